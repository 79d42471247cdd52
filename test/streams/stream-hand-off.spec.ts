import type Redis from 'ioredis';
import { parseDlqEntry } from '../../src/streams/dead-letter.writer';
import { HandOffError } from '../../src/streams/stream-errors';
import type { HandlerContext, StreamConsumer } from '../../src/streams/stream-consumer';
import { expectEventually, pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { appendRequest, groupPending, makeConsumer, StreamKeys } from './stream-harness';

/**
 * Hand-offs (HandOffError): a consumer passes an entry it cannot work on to a named peer of its group, which is
 * woken at once (pub/sub), not after CLAIM_IDLE_MS; nothing is lost when the peer is gone, and an entry passed
 * around without end still reaches the DLQ.
 */
describe('StreamConsumer hand-offs (real Redis)', () => {
  let redis: Redis;
  let keys: StreamKeys;
  const consumers: StreamConsumer[] = [];

  beforeEach(() => {
    redis = testRedis();
    keys = new StreamKeys(uniquePrefix('handoff'));
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close(100)));
    await cleanupPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  async function start(name: string, handle: Parameters<typeof makeConsumer>[2], claimIdleMs: number) {
    const consumer = makeConsumer(redis, keys, handle, { consumer: name, acceptsHandOffs: true, claimIdleMs });
    consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  it('passes entries to the named peer, which takes them at once (long before CLAIM_IDLE_MS)', async () => {
    // A minute of CLAIM_IDLE_MS: no sweeper moves anything within this test; only the wake-up can.
    const claimIdleMs = 60_000;
    const done: { jobId: string; ctx: HandlerContext }[] = [];
    const a = await start(
      'gpu-a',
      async () => Promise.reject(new HandOffError('gpu-b', 'lacks a checkpoint')),
      claimIdleMs,
    );
    await start('gpu-b', async (env, ctx) => void done.push({ jobId: env.jobId, ctx }), claimIdleMs);
    for (let i = 0; i < 6; i++) await appendRequest(redis, keys, `job-${i}`);
    await pollUntil(
      () => done.length,
      (n) => n === 6,
      { timeoutMs: 10_000, description: 'every entry done by the peer' },
    );
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
    const handedByA = a.stats().handedOff;
    // B reads the stream too: what it read itself it ran; what A read, A handed over (a second delivery).
    expect(handedByA).toBe(done.filter((d) => d.ctx.deliveries === 2).length);
    expect(handedByA + done.filter((d) => d.ctx.deliveries === 1).length).toBe(6);
    expect(done.every((d) => d.ctx.consumer === 'gpu-b')).toBe(true);
  });

  it('an entry handed to a peer that is gone is claimed by a sweeper after CLAIM_IDLE_MS, not lost', async () => {
    const runs: HandlerContext[] = [];
    await start(
      'gpu-a',
      async (_env, ctx) => {
        if (ctx.deliveries === 1) throw new HandOffError('gpu-gone', 'lacks a checkpoint');
        runs.push(ctx);
      },
      300,
    );
    const id = await appendRequest(redis, keys, 'job-orphan');
    const [ran] = await pollUntil(
      () => runs,
      (r) => r.length === 1,
      { timeoutMs: 10_000, description: 'the orphaned entry claimed and run' },
    );
    expect(ran).toMatchObject({ id, consumer: 'gpu-a', deliveries: 3 });
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
  });

  it('an entry passed back and forth without end reaches the DLQ, with every hand-off in its history', async () => {
    await start('gpu-a', async () => Promise.reject(new HandOffError('gpu-b', 'not here')), 60_000);
    await start('gpu-b', async () => Promise.reject(new HandOffError('gpu-a', 'not here either')), 60_000);
    await appendRequest(redis, keys, 'job-hot-potato');
    const [letter] = await pollUntil(
      () => redis.xrange(keys.dlq, '-', '+'),
      (entries) => entries.length === 1,
      { timeoutMs: 10_000, description: 'the entry dead-lettered' },
    );
    const parsed = parseDlqEntry(letter![0], letter![1]);
    expect(parsed.reason).toMatch(/exceeded MAX_DELIVERIES \(3\)/);
    expect((parsed.history as { error: string }[]).map((a) => a.error)).toEqual([
      expect.stringMatching(/^handed off to gpu-(a|b): not here/),
      expect.stringMatching(/^handed off to gpu-(a|b): not here/),
      expect.stringMatching(/^handed off to gpu-(a|b): not here/),
    ]);
  });
});
