import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

/** The repository root. */
export const ROOT = join(__dirname, '..', '..');

export interface CompiledTreeOptions {
  /** Repository folders to transpile (default: `src`). */
  roots?: readonly string[];
  /** Where the temporary tree goes (default: the OS temp folder). */
  parent?: string;
  /** Name prefix of the temporary folder. */
  label?: string;
}

/**
 * The repository transpiled once to plain JavaScript in a temporary folder, file by file (what
 * `ts-node --transpile-only` does at every start, so a type error elsewhere cannot stop a run). Used by the
 * benchmarks (a worker's RSS and CPU profile show the service, not the compiler) and the chaos suite (a process
 * killed and restarted a hundred times starts in about a second).
 */
export class CompiledTree {
  private constructor(
    readonly dir: string,
    readonly files: number,
    readonly buildMs: number,
  ) {}

  static build({ roots = ['src'], parent = tmpdir(), label = 'comfy-relay-build' }: CompiledTreeOptions = {}) {
    const started = performance.now();
    const dir = mkdtempSync(join(parent, `${label}-`));
    const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const options: ts.CompilerOptions = { ...parsed.options, sourceMap: false, inlineSourceMap: false, noEmit: false };
    let files = 0;
    for (const source of roots.flatMap((root) => listTs(join(ROOT, root)))) {
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
    return new CompiledTree(dir, files, Math.round(performance.now() - started));
  }

  /** Path of a compiled script given its repository path (e.g. `bench/children/app-child.ts`). */
  script(repoPath: string): string {
    return join(this.dir, repoPath.replace(/\.ts$/, '.js'));
  }

  /** The service entry point (`src/main.ts`). */
  get main(): string {
    return this.script('src/main.ts');
  }

  /** The tree lives outside the repository: packages resolve from the repository's node_modules. */
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
  return out.sort();
}
