import type Redis from 'ioredis';
import { parseDlqEntry } from '../../src/streams/dead-letter.writer';
import { DeadLetterError, RetryLaterError } from '../../src/streams/stream-errors';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamRetention } from '../../src/streams/stream-retention';
import { expectEventually, pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { appendRequest, groupPending, makeConsumer, StreamKeys } from './stream-harness';

describe('StreamConsumer (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let keys: StreamKeys;
  const consumers: StreamConsumer[] = [];

  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('consumer');
    keys = new StreamKeys(prefix);
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close(100)));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  function start(...args: Parameters<typeof makeConsumer> extends [unknown, unknown, ...infer R] ? R : never) {
    const consumer = makeConsumer(redis, keys, ...args);
    consumers.push(consumer);
    return consumer;
  }

  it('delivers each entry to the handler and acks it', async () => {
    const seen: string[] = [];
    await start(async (env) => {
      seen.push(env.jobId);
    }).start();
    for (let i = 0; i < 20; i++) await appendRequest(redis, keys, `job-${i}`);
    await pollUntil(
      () => seen.length,
      (n) => n === 20,
    );
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
    expect(new Set(seen).size).toBe(20);
  });

  it('never runs more handlers at once than its concurrency', async () => {
    let running = 0;
    let peak = 0;
    let done = 0;
    await start(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 5));
        running--;
        done++;
      },
      { concurrency: 3 },
    ).start();
    for (let i = 0; i < 30; i++) await appendRequest(redis, keys, `job-${i}`);
    await pollUntil(
      () => done,
      (n) => n === 30,
    );
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('dead-letters a poison entry after MAX_DELIVERIES with its error and history', async () => {
    let calls = 0;
    await start(
      async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
      { maxDeliveries: 3, claimIdleMs: 150 },
    ).start();
    const id = await appendRequest(redis, keys, 'poison');
    const dlq = await pollUntil(
      () => redis.xrange(keys.dlq, '-', '+'),
      (e) => e.length === 1,
      { timeoutMs: 15_000 },
    );
    const record = parseDlqEntry(dlq[0]![0], dlq[0]![1]);
    expect(calls).toBe(3);
    expect(record).toMatchObject({ entryId: id, group: 'gpu', jobId: 'poison', reason: 'boom 3', deliveries: 3 });
    expect(record.history).toHaveLength(3);
    expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0);
    const events = await redis.xrange(keys.events, '-', '+');
    expect(events).toHaveLength(1);
    const event = JSON.parse(events[0]![1][1]!);
    expect(event).toMatchObject({ type: 'job.dead-lettered', jobId: 'poison', payload: { endsJob: true } });
  });

  it('retries in place on RetryLaterError with inPlaceAfterMs: same consumer, delivery count grows, slot kept', async () => {
    const deliveries: number[] = [];
    const order: string[] = [];
    await start(
      async (env, ctx) => {
        order.push(`${env.jobId}#${ctx.deliveries}`);
        if (env.jobId === 'flaky') {
          deliveries.push(ctx.deliveries);
          if (ctx.deliveries < 3) throw new RetryLaterError('fleet fault', { inPlaceAfterMs: 20 });
        }
      },
      // CLAIM_IDLE_MS far beyond the deadline: only an in-place retry can finish in time; one slot, so the
      // entry read after it cannot pass it.
      { concurrency: 1, claimIdleMs: 60_000, maxDeliveries: 5 },
    ).start();
    await appendRequest(redis, keys, 'flaky');
    await appendRequest(redis, keys, 'after');
    await pollUntil(
      () => order.length,
      (n) => n === 4,
      { timeoutMs: 5_000, description: 'three tries and the next entry' },
    );
    expect(deliveries).toEqual([1, 2, 3]);
    expect(order).toEqual(['flaky#1', 'flaky#2', 'flaky#3', 'after#1']);
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
    expect(await redis.xlen(keys.dlq)).toBe(0);
  });

  it('an in-place retry past MAX_DELIVERIES dead-letters with every attempt in its history', async () => {
    let calls = 0;
    await start(
      async () => {
        calls++;
        throw new RetryLaterError(`fault ${calls}`, { inPlaceAfterMs: 0 });
      },
      { claimIdleMs: 60_000, maxDeliveries: 3 },
    ).start();
    await appendRequest(redis, keys, 'always-failing');
    const dlq = await pollUntil(
      () => redis.xrange(keys.dlq, '-', '+'),
      (e) => e.length === 1,
      { timeoutMs: 5_000 },
    );
    const record = parseDlqEntry(dlq[0]![0], dlq[0]![1]);
    expect(calls).toBe(3);
    expect(record).toMatchObject({ reason: 'fault 3', deliveries: 3 });
    expect(record.history).toHaveLength(3);
  });

  it('dead-letters at once on DeadLetterError', async () => {
    let calls = 0;
    await start(async () => {
      calls++;
      throw new DeadLetterError('unknown workflow');
    }).start();
    await appendRequest(redis, keys, 'bad');
    const dlq = await pollUntil(
      () => redis.xrange(keys.dlq, '-', '+'),
      (e) => e.length === 1,
    );
    expect(parseDlqEntry(dlq[0]![0], dlq[0]![1]).reason).toBe('unknown workflow');
    expect(calls).toBe(1);
  });

  it('dead-letters malformed entries with the reason and keeps consuming', async () => {
    const seen: string[] = [];
    await start(async (env) => {
      seen.push(env.jobId);
    }).start();
    await redis.xadd(keys.requests, '*', 'e', '{not json');
    await redis.xadd(keys.requests, '*', 'x', 'no envelope');
    await redis.xadd(keys.requests, '*', 'e', JSON.stringify({ type: 'job.unknown', v: 1 }));
    await redis.xadd(keys.requests, '*', 'e', JSON.stringify({ type: 'job.requested', v: 3 }));
    await appendRequest(redis, keys, 'good');
    await pollUntil(
      () => seen,
      (s) => s.includes('good'),
    );
    const dlq = await pollUntil(
      () => redis.xrange(keys.dlq, '-', '+'),
      (e) => e.length === 4,
    );
    const reasons = dlq.map(([id, fields]) => parseDlqEntry(id, fields).reason);
    expect(reasons[0]).toMatch(/not JSON/);
    expect(reasons[1]).toMatch(/no "e" field/);
    expect(reasons[2]).toMatch(/unknown event type/);
    expect(reasons[3]).toMatch(/unsupported envelope version/);
    expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0);
  });

  it('heartbeat keeps a handler running 3x CLAIM_IDLE_MS from being stolen', async () => {
    const claimIdleMs = 200;
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await start(
      async (_env, ctx) => {
        runs.push(ctx.consumer);
        await gate;
      },
      { consumer: 'a', claimIdleMs },
    ).start();
    await start(
      async (_env, ctx) => {
        runs.push(ctx.consumer);
      },
      { consumer: 'b', claimIdleMs, sweepIntervalMs: 50 },
    ).start();
    await appendRequest(redis, keys, 'long');
    await pollUntil(
      () => runs.length,
      (n) => n === 1,
    );
    const startedAt = Date.now();
    // Wait for three claim-idle periods while b sweeps every 50 ms.
    await pollUntil(
      () => Date.now() - startedAt,
      (t) => t > claimIdleMs * 3,
      { intervalMs: 25 },
    );
    release();
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
    expect(runs).toEqual(['a']);
  });

  it('resumes its own pending entries after a restart with the same name', async () => {
    const first: string[] = [];
    const c1 = makeConsumer(
      redis,
      keys,
      async (env, ctx) => {
        first.push(env.jobId);
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        throw new Error('aborted');
      },
      { consumer: 'gpu-host-1', claimIdleMs: 60_000 },
    );
    await c1.start();
    await appendRequest(redis, keys, 'a');
    await appendRequest(redis, keys, 'b');
    await pollUntil(
      () => first.length,
      (n) => n === 2,
    );
    await c1.close(50);
    expect(await groupPending(redis, keys.requests, 'gpu')).toBe(2);
    const second: { jobId: string; deliveries: number }[] = [];
    await start(
      async (env, ctx) => {
        second.push({ jobId: env.jobId, deliveries: ctx.deliveries });
      },
      { consumer: 'gpu-host-1', claimIdleMs: 60_000 },
    ).start();
    await pollUntil(
      () => second.length,
      (n) => n === 2,
    );
    expect(second.map((s) => s.jobId).sort()).toEqual(['a', 'b']);
    expect(second.every((s) => s.deliveries === 2)).toBe(true);
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
  });

  it('graceful close waits for in-flight handlers and acks them', async () => {
    let finished = 0;
    let startedCount = 0;
    const consumer = makeConsumer(redis, keys, async () => {
      startedCount++;
      await new Promise((r) => setTimeout(r, 200));
      finished++;
    });
    await consumer.start();
    await appendRequest(redis, keys, 'x');
    await appendRequest(redis, keys, 'y');
    await pollUntil(
      () => startedCount,
      (n) => n === 2,
    );
    await consumer.close(5_000);
    expect(finished).toBe(2);
    expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0);
    const consumersLeft = (await redis.xinfo('CONSUMERS', keys.requests, 'gpu')) as unknown[];
    expect(consumersLeft).toHaveLength(0);
  });

  it('retention never trims a pending or undelivered entry', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    await start(
      async (env) => {
        seen.push(env.jobId);
        if (env.jobId === 'held') await gate;
      },
      { concurrency: 1 },
    ).start();
    for (let i = 0; i < 5; i++) await appendRequest(redis, keys, `old-${i}`);
    await pollUntil(
      () => seen.length,
      (n) => n === 5,
    );
    const heldId = await appendRequest(redis, keys, 'held');
    await pollUntil(
      () => seen,
      (s) => s.includes('held'),
    );
    for (let i = 0; i < 3; i++) await appendRequest(redis, keys, `later-${i}`);
    // Age cutoff in the future: everything is "old", so only group positions hold trimming back.
    const result = await new StreamRetention(redis).trim(keys.requests, 1, Date.now() + 60_000);
    expect(result.minId).toBe(heldId);
    const remaining = (await redis.xrange(keys.requests, '-', '+')).map(([id]) => id);
    expect(remaining).toContain(heldId);
    expect(remaining.length).toBeGreaterThanOrEqual(4);
    release();
    await pollUntil(
      () => seen.length,
      (n) => n === 9,
    );
  });
});
