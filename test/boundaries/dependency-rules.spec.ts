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

  it('lets only stores, repositories, readers, ledgers, infrastructure and wiring import the raw Redis client', async () => {
    const usesRedis = (depth: number) =>
      `import { REDIS } from '${'../'.repeat(depth)}streams/redis.provider';\nexport const r = REDIS;\n`;
    const found = await violations({
      'src/streams/redis.provider.ts': "export const REDIS = Symbol('REDIS');\n",
      // Refused: the roles that get a store injected instead.
      'src/modules/generation/api/generation.controller.ts': usesRedis(3),
      'src/modules/generation/api/generation-events.sse.ts': usesRedis(3),
      'src/modules/gpu/runner/cancel-registry.service.ts': usesRedis(3),
      'src/modules/metrics/job-event-metrics.tail.ts': usesRedis(2),
      'src/modules/health/streams.health.ts': usesRedis(2),
      'src/modules/bot/status/redis-lease.ts': usesRedis(3),
      'src/cli/commands/tail.command.ts': usesRedis(2),
      'src/cli/services/job-events.scanner.ts': usesRedis(2),
      // Allowed: store roles by name, infrastructure, the connection's own health check, wiring.
      'src/modules/bot/status/bot-job.store.ts': usesRedis(3),
      'src/modules/generation/projection/job-view.repository.ts': usesRedis(3),
      'src/modules/generation/projection/job-timeline.reader.ts': usesRedis(3),
      'src/modules/generation/ledger/job-ledger.ts': usesRedis(3),
      'src/modules/bot/delivery/delivery-ledger.ts': usesRedis(3),
      'src/modules/health/redis.health.ts': usesRedis(2),
      'src/modules/bot/bot.module.ts': usesRedis(2),
      'src/streams/stream.reader.ts': "import { REDIS } from './redis.provider';\nexport const r = REDIS;\n",
      'src/blobs/blob-store.opener.ts': usesRedis(1),
      'src/bootstrap.ts': "import { REDIS } from './streams/redis.provider';\nexport const r = REDIS;\n",
    });
    expect(found.map((v) => `${v.rule}: ${v.from}`).sort()).toEqual(
      [
        'src/cli/commands/tail.command.ts',
        'src/cli/services/job-events.scanner.ts',
        'src/modules/bot/status/redis-lease.ts',
        'src/modules/generation/api/generation-events.sse.ts',
        'src/modules/generation/api/generation.controller.ts',
        'src/modules/gpu/runner/cancel-registry.service.ts',
        'src/modules/health/streams.health.ts',
        'src/modules/metrics/job-event-metrics.tail.ts',
      ].map((from) => `raw-redis-client-only-in-stores: ${from}`),
    );
  }, 60_000);
});
