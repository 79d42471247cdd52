import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { primaries, type RedisClient } from '../../src/redis/redis-client';

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

/** Deletes every key under `prefix` (SCAN, bounded batches; on a cluster, on every primary). */
export async function cleanupPrefix(redis: RedisClient, prefix: string): Promise<void> {
  await Promise.all(primaries(redis).map((node) => cleanupNode(node, prefix)));
}

async function cleanupNode(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    // One DEL per key (pipelined): on a cluster node, a multi-key DEL across slots is refused.
    if (keys.length > 0) await keys.reduce((p, key) => p.del(key), redis.pipeline()).exec();
    cursor = next;
    if (cursor === '0') return;
  }
}

/** Keys matching `pattern` (SCAN on every primary: a cluster client sends KEYS to one node only). */
export async function keysMatching(redis: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of primaries(redis)) {
    let cursor = '0';
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      found.push(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  }
  return found;
}

/**
 * A unique prefix without a hash tag, for STREAM_SHARDS > 1 (each shard adds its own tag: `<prefix>{i}:`). Every
 * shard's keys still start with it, so cleanupPrefix and keysMatching find them all.
 */
export function uniqueShardedPrefix(label = 't'): string {
  return `test-${label}-${randomUUID().slice(0, 8)}:`;
}
