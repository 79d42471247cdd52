import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

export const ROOT = join(__dirname, '..', '..');

/**
 * The service processes run as plain JavaScript transpiled once per run (what `ts-node --transpile-only` does
 * at every start): a process killed and restarted a hundred times then starts in about a second instead of
 * paying the compiler each time, which on two cores is the difference between a fault schedule and a build farm.
 */
export class CompiledTree {
  private constructor(
    readonly dir: string,
    readonly files: number,
    readonly buildMs: number,
  ) {}

  static build(parent = tmpdir()): CompiledTree {
    const started = Date.now();
    const dir = mkdtempSync(join(parent, 'comfy-relay-chaos-build-'));
    const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const options: ts.CompilerOptions = { ...parsed.options, sourceMap: false, inlineSourceMap: false, noEmit: false };
    let files = 0;
    for (const source of listTs(join(ROOT, 'src'))) {
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
    return new CompiledTree(dir, files, Date.now() - started);
  }

  /** The service entry point (`src/main.ts` → `main.js`). */
  get main(): string {
    return join(this.dir, 'src', 'main.js');
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
