import { CompiledTree as Tree, ROOT } from '../../scripts/lib/compiled-tree';

export { ROOT };
export type CompiledTree = Tree;

/** The service plus the bench's child scripts, as plain JavaScript (see scripts/lib/compiled-tree.ts). */
export function buildBenchTree(): CompiledTree {
  return Tree.build({ roots: ['src', 'bench/children', 'bench/lib'], label: 'comfy-relay-bench' });
}
