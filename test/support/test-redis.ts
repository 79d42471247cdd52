import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';

export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A unique key prefix per test, so suites never see each other's streams. It carries a hash tag, as a prefix for a
 * Redis Cluster must: every script's keys then share one slot, which a Redis in cluster mode checks for scripts
 * with a shebang (docs/job-state.md, "Keys and hash slots"), so any suite can be pointed at a one-node cluster.
 */
export function uniquePrefix(label = 't'): string {
  return `test:{${label}:${randomUUID().slice(0, 8)}}:`;
}

export function testRedis(url = TEST_REDIS_URL): Redis {
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
}

/** Deletes every key under `prefix` (SCAN, bounded batches). */
export async function cleanupPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
    if (cursor === '0') return;
  }
}
