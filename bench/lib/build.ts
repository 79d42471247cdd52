import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

export const ROOT = join(__dirname, '..', '..');

/**
 * Child processes run plain JavaScript, like `npm run start:prod` does: a worker's RSS and CPU profile then show
 * the service, not the TypeScript compiler that ts-node would load into it. Files are transpiled one by one
 * (what ts-node --transpile-only does), so a type error elsewhere in the tree cannot stop a bench run.
 */
export class CompiledTree {
  private constructor(readonly dir: string) {}

  static build(): CompiledTree {
    const started = performance.now();
    const dir = mkdtempSync(join(tmpdir(), 'comfy-relay-bench-'));
    const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const options: ts.CompilerOptions = { ...parsed.options, sourceMap: false, inlineSourceMap: false, noEmit: false };
    let files = 0;
    for (const source of [join(ROOT, 'src'), join(ROOT, 'bench', 'children'), join(ROOT, 'bench', 'lib')].flatMap(
      listTs,
    )) {
      if (source.endsWith('.spec.ts') || source.endsWith('.d.ts')) continue;
      const out = join(dir, relative(ROOT, source)).replace(/\.ts$/, '.js');
      const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
        compilerOptions: options,
        fileName: source,
      });
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, outputText);
      files++;
    }
    const tree = new CompiledTree(dir);
    tree.buildMs = performance.now() - started;
    tree.files = files;
    return tree;
  }

  buildMs = 0;
  files = 0;

  /** Path of a compiled script given its repository path (e.g. `bench/children/app-child.ts`). */
  script(repoPath: string): string {
    return join(this.dir, repoPath.replace(/\.ts$/, '.js'));
  }

  /** The compiled tree lives outside the repository: resolve packages from the repository's node_modules. */
  env(): Record<string, string> {
    return { NODE_PATH: join(ROOT, 'node_modules') };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  const stack = [dir];
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const current = stack.pop()!;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) stack.push(path);
      else if (entry.name.endsWith('.ts')) out.push(path);
    }
  }
  return out;
}
