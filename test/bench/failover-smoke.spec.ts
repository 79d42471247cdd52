import { buildBenchTree, type CompiledTree } from '../../bench/lib/build';
import { BenchContext } from '../../bench/lib/context';
import { runFailover } from '../../bench/measures/failover';
import { TEST_REDIS_URL } from '../support/test-redis';

/**
 * The bench's failover measure (12) in a tiny mode, so the figures docs/scaling.md quotes stay true: a Sentinel set,
 * the service pointed at it with REDIS_MIN_REPLICAS_ACK=1, a few submits per second over HTTP, kill -9 of the
 * primary; no job answered 202 is lost, none runs twice, and submits are accepted again within 10 s.
 */
describe('bench: failover measure (tiny)', () => {
  let tree: CompiledTree;
  let ctx: BenchContext;

  beforeAll(() => {
    tree = buildBenchTree();
    ctx = new BenchContext({ quick: true, redisUrl: TEST_REDIS_URL, tree, log: () => undefined });
  });

  afterAll(async () => {
    await ctx.dispose();
    tree.remove();
  });

  it('loses no accepted job, runs none twice, and answers 202 again within 10 s of the kill', async () => {
    const outcome = await runFailover(
      ctx,
      {
        rate: 10,
        clients: 2,
        acceptedBeforeKill: 10,
        acceptedAfterKill: 5,
        downAfterMs: 1_000,
        instances: 2,
        timeoutMs: 30_000,
        idleWindowMs: 500,
        steps: 4,
        stepMs: 10,
        claimIdleMs: 1_000,
      },
      'failover-smoke',
    );
    expect(outcome.accepted).toBeGreaterThanOrEqual(15);
    expect(outcome.lostByStatus).toEqual({});
    expect(outcome.lost).toBe(0);
    expect(outcome.ranTwice).toBe(0);
    expect(outcome.promptsRunTwice).toBe(0);
    expect(outcome.succeededWithoutRun).toBe(0);
    expect(outcome.newPrimary).not.toBe(outcome.oldPrimary);
    expect(outcome.gapMs).toBeGreaterThan(0);
    expect(outcome.gapMs).toBeLessThan(10_000);
    expect(outcome.primary?.jobs).toBeGreaterThan(0);
  }, 90_000);
});
