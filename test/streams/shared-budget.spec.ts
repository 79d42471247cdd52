import type Redis from 'ioredis';
import { ConcurrencyBudget } from '../../src/streams/concurrency-budget';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniqueShardedPrefix } from '../support/test-redis';
import { appendRequest, makeConsumer, StreamKeys } from './stream-harness';

const LIMIT = 1;
const PER_SHARD = 40;

/**
 * STREAM_SHARDS: a group's consumers of every shard share one in-flight budget. A slot freed while one shard's reader
 * waits may be taken by another shard's consumer before that reader runs again; it must then wait, never read with
 * COUNT 0 (to Redis: no limit), which would pull its shard's whole backlog into this process and keep it from every
 * other replica.
 */
describe('consumers of two shards sharing one budget (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const consumers: StreamConsumer[] = [];

  beforeEach(() => {
    redis = testRedis();
    prefix = uniqueShardedPrefix('budget');
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close(100)));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('never hold more read entries than the budget allows per shard, and never run more than it', async () => {
    const shards = StreamKeys.sharded(prefix, 2).shards;
    for (const keys of shards) {
      for (let i = 0; i < PER_SHARD; i++) await appendRequest(redis, keys, `job-${keys.shard}-${i}`);
    }
    const budget = new ConcurrencyBudget(LIMIT);
    let running = 0;
    let peakRunning = 0;
    let peakBacklog = 0;
    let done = 0;
    for (const keys of shards) {
      const consumer = makeConsumer(
        redis,
        keys,
        async () => {
          running++;
          peakRunning = Math.max(peakRunning, running);
          for (const c of consumers) peakBacklog = Math.max(peakBacklog, c.stats().backlog);
          await new Promise((r) => setImmediate(r));
          running--;
          done++;
        },
        { concurrency: LIMIT, budget, consumer: 'gpu-shared-1', blockMs: 200 },
      );
      consumers.push(consumer);
    }
    await Promise.all(consumers.map((c) => c.start()));
    await pollUntil(
      () => done,
      (n) => n === 2 * PER_SHARD,
      { timeoutMs: 30_000, description: 'every entry of both shards handled' },
    );
    expect(peakRunning).toBe(LIMIT);
    // Each shard's reader asks for at most what is free: one entry waits at most, not the shard's backlog.
    expect(peakBacklog).toBeLessThanOrEqual(LIMIT);
  });
});
