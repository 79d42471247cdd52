import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { expectEventually, pollUntil } from '../support/poll-until';
import { TestRedisServer } from '../support/redis-server';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';
import { appendRequest, groupPending, makeConsumer, StreamKeys } from './stream-harness';

const CHILD = join(__dirname, '../support/consumer-child.ts');

function spawnChild(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('StreamConsumer under crashes', () => {
  let redis: Redis;
  let prefix: string;
  let keys: StreamKeys;
  const consumers: StreamConsumer[] = [];
  const children: ChildProcess[] = [];

  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('crash');
    keys = new StreamKeys(prefix);
  });

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(consumers.splice(0).map((c) => c.close(100)));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a consumer killed with -9 mid-handler: another claims its entries, runs them once more and acks', async () => {
    const child = spawnChild({ REDIS_URL: TEST_REDIS_URL, PREFIX: prefix, CONSUMER: 'doomed', HOLD: '1' });
    children.push(child);
    const log = `${prefix}log`;
    await pollUntil(
      () => redis.lrange(log, 0, -1),
      (l) => l.includes('ready:doomed'),
      { timeoutMs: 30_000 },
    );
    await appendRequest(redis, keys, 'j1');
    await appendRequest(redis, keys, 'j2');
    await pollUntil(
      () => redis.lrange(log, 0, -1),
      (l) => l.filter((x) => x.startsWith('start:')).length === 2,
    );
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const survivorRuns: string[] = [];
    const survivor = makeConsumer(
      redis,
      keys,
      async (env, ctx) => {
        survivorRuns.push(`${env.jobId}:${ctx.deliveries}`);
      },
      { consumer: 'survivor', claimIdleMs: 300, sweepIntervalMs: 50 },
    );
    consumers.push(survivor);
    await survivor.start();
    await pollUntil(
      () => survivorRuns.length,
      (n) => n === 2,
      { timeoutMs: 10_000 },
    );
    expect(survivorRuns.sort()).toEqual(['j1:2', 'j2:2']);
    await expectEventually(async () => expect(await groupPending(redis, keys.requests, 'gpu')).toBe(0));
    expect(await redis.xlen(keys.dlq)).toBe(0);
  });

  it('keeps consuming across a Redis restart and loses no entry (AOF)', async () => {
    const server = await new TestRedisServer().start();
    const local = testRedis(server.url);
    const seen = new Set<string>();
    const consumer = makeConsumer(
      local,
      keys,
      async (env) => {
        seen.add(env.jobId);
      },
      { claimIdleMs: 500 },
    );
    try {
      await consumer.start();
      for (let i = 0; i < 10; i++) await appendRequest(local, keys, `before-${i}`);
      await pollUntil(
        () => seen.size,
        (n) => n === 10,
      );

      await server.restart();
      // Appends made right after the restart must reach the consumer once its loop reconnects.
      await pollUntil(
        async () => {
          try {
            return (await local.ping()) === 'PONG';
          } catch {
            return false;
          }
        },
        (ok) => ok,
        { timeoutMs: 15_000 },
      );
      for (let i = 0; i < 10; i++) await appendRequest(local, keys, `after-${i}`);
      await pollUntil(
        () => seen.size,
        (n) => n === 20,
        { timeoutMs: 20_000 },
      );
      await expectEventually(async () => expect(await groupPending(local, keys.requests, 'gpu')).toBe(0), {
        timeoutMs: 10_000,
      });
    } finally {
      await consumer.close(100);
      local.disconnect();
      await server.stop();
    }
  });
});
