import { buildBenchTree, type CompiledTree } from '../../bench/lib/build';
import { BenchContext, result } from '../../bench/lib/context';
import { countKeys } from '../../bench/lib/redis-tools';
import { runTransport } from '../../bench/lib/runs';
import { renderTable } from '../../bench/lib/table';
import { TEST_REDIS_URL } from '../support/test-redis';

/** The bench tool works end to end on a tiny run: children start, jobs drain, keys are cleaned, a table renders. */
describe('bench smoke', () => {
  let tree: CompiledTree;
  let ctx: BenchContext;

  beforeAll(() => {
    tree = buildBenchTree();
  });

  afterAll(() => {
    tree.remove();
  });

  beforeEach(() => {
    ctx = new BenchContext({ quick: true, redisUrl: TEST_REDIS_URL, tree, log: () => undefined });
  });

  afterEach(async () => {
    await ctx.dispose();
  });

  it('drains a few hundred no-op jobs through the streams core and BullMQ in child processes, then cleans up', async () => {
    const core = await runTransport(ctx, { kind: 'streams', processes: 1, jobs: 300, redisUrl: TEST_REDIS_URL });
    const bull = await runTransport(ctx, { kind: 'bullmq', processes: 1, jobs: 300, redisUrl: TEST_REDIS_URL });
    expect(core.jobsPerSec).toBeGreaterThan(0);
    expect(bull.jobsPerSec).toBeGreaterThan(0);
    expect(core.rssLoadMb[0]).toBeGreaterThan(10);
    await ctx.cleanup();
    expect(await countKeys(ctx.redis(), `bench:tp-streams:${ctx.runId}:`)).toBe(0);
    expect(await countKeys(ctx.redis(), `bench:tp-bullmq:${ctx.runId}:`)).toBe(0);

    const row = result(1, 'streams core no-op', core.jobsPerSec, 'jobs/s', {
      baseline: bull.jobsPerSec,
      baselineName: 'BullMQ no-op',
      target: '≥ 1.5× BullMQ',
      pass: core.jobsPerSec >= 1.5 * bull.jobsPerSec,
    });
    expect(row.ratio).toBeCloseTo(core.jobsPerSec / bull.jobsPerSec);
    const table = renderTable([row], 'markdown');
    expect(table).toContain('| 1 | streams core no-op |');
    expect(table).toContain('BullMQ no-op');
  }, 30_000);
});
