import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

/** The rules npm test enforces (.dependency-cruiser.cjs), run on a small tree laid out like src/. */
async function violations(files: Record<string, string>): Promise<{ rule: string; from: string; to: string }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'boundaries-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'commonjs' } }));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const { stdout } = await run(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], {
      cwd: dir,
      maxBuffer: 10 * 1024 * 1024,
    }).catch((err: unknown) => ({ stdout: (err as { stdout?: string }).stdout ?? '' })); // non-zero on violations
    const report = JSON.parse(stdout) as {
      summary: { violations: { rule: { name: string }; from: string; to: string }[] };
    };
    return report.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('module boundaries (dependency-cruiser)', () => {
  it('the real tree has no violation', async () => {
    const { stdout } = await run(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'err'], { cwd: ROOT });
    expect(stdout).toContain('no dependency violations');
  }, 60_000);

  it('refuses each forbidden import of a deliberately bad tree, and allows the good ones', async () => {
    const found = await violations({
      'src/streams/codec.ts': "import { x } from '../modules/generation/index';\nexport const y = x;\n",
      'src/modules/generation/index.ts': "export { x } from './inner/thing';\n",
      'src/modules/generation/inner/thing.ts': 'export const x = 1;\n',
      'src/modules/gpu/runner.ts': [
        "import { x } from '../generation/inner/thing';",
        "import { z } from '../bot/index';",
        "import { ok } from '../generation/index';",
        'export const r = [x, z, ok];',
        '',
      ].join('\n'),
      'src/modules/bot/index.ts': 'export const z = 2;\n',
      'src/cli/command.ts': "import { x } from '../modules/generation/inner/thing';\nexport const c = x;\n",
      'src/tools/sim.ts': 'export const sim = 3;\n',
      'src/modules/gpu/static-sim.ts': "import { sim } from '../../tools/sim';\nexport const s = sim;\n",
      'src/modules/gpu/embedded/embedded-simulators.ts':
        "export async function load() {\n  return (await import('../../../tools/sim')).sim;\n}\n",
    });
    const rules = found.map((v) => `${v.rule}: ${v.from} → ${v.to}`).sort();
    expect(rules).toEqual(
      [
        'cli-meets-modules-through-their-public-index: src/cli/command.ts → src/modules/generation/inner/thing.ts',
        'gpu-and-bot-never-import-each-other: src/modules/gpu/runner.ts → src/modules/bot/index.ts',
        'infrastructure-imports-no-feature-module: src/streams/codec.ts → src/modules/generation/index.ts',
        'modules-meet-through-their-public-index: src/modules/gpu/runner.ts → src/modules/generation/inner/thing.ts',
        'production-code-never-imports-tools: src/modules/gpu/static-sim.ts → src/tools/sim.ts',
        'tools-dynamic-import-only-from-the-embedded-default: src/modules/gpu/static-sim.ts → src/tools/sim.ts',
      ].sort(),
    );
  }, 60_000);
});
