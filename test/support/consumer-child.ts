/**
 * A consumer in its own process, for kill -9 tests. Records every handler start in `<prefix>log` and then
 * holds the entry until killed (HOLD=1) or finishes at once.
 * env: REDIS_URL, PREFIX, CONSUMER, CLAIM_IDLE_MS, HOLD
 */
import Redis from 'ioredis';
import { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';

async function main(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keys = new StreamKeys(process.env.PREFIX ?? 'test:child:');
  const hold = process.env.HOLD === '1';
  const consumer = new StreamConsumer(redis, keys, {
    streams: [keys.requests],
    group: 'gpu',
    consumer: process.env.CONSUMER ?? 'child',
    concurrency: 4,
    claimIdleMs: Number(process.env.CLAIM_IDLE_MS ?? 300),
    maxDeliveries: 5,
    deadLetterEndsJob: true,
    blockMs: 1000,
    handle: async (env, ctx) => {
      await redis.rpush(`${keys.prefix}log`, `start:${env.jobId}:${ctx.consumer}:${ctx.deliveries}`);
      if (hold) await new Promise(() => undefined);
    },
  });
  await consumer.start();
  await redis.rpush(`${keys.prefix}log`, `ready:${process.env.CONSUMER ?? 'child'}`);
}

void main();
