/**
 * A no-op worker for the transport comparison, in its own process: KIND=streams runs our StreamConsumer (group
 * `gpu` on `<PREFIX>jobs:requests`), KIND=bullmq a BullMQ Worker on queue QUEUE (prefix PREFIX). Both connect and
 * print `READY`, start consuming on `go`, and on `exit` close and exit 0.
 * env: REDIS_URL, KIND, PREFIX, QUEUE, CONSUMER, CONCURRENCY
 */
import { createInterface } from 'node:readline';
import { Worker } from 'bullmq';
import Redis from 'ioredis';
import { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';
import { bullConnection } from '../lib/bull-connection';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

interface Runner {
  go(): void;
  close(): Promise<void>;
}

async function streamsRunner(url: string, concurrency: number): Promise<Runner> {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const keys = new StreamKeys(env('PREFIX'));
  const consumer = new StreamConsumer(redis, keys, {
    streams: [keys.requests],
    group: 'gpu',
    consumer: env('CONSUMER', `noop-${process.pid}`),
    concurrency,
    claimIdleMs: 30_000,
    maxDeliveries: 5,
    deadLetterEndsJob: true,
    handle: async () => undefined,
  });
  await redis.ping();
  return {
    go: () => void consumer.start(),
    close: async () => {
      await consumer.close(2_000);
      redis.disconnect();
    },
  };
}

async function bullmqRunner(url: string, concurrency: number): Promise<Runner> {
  const worker = new Worker(env('QUEUE'), async () => undefined, {
    connection: bullConnection(url),
    prefix: env('PREFIX'),
    concurrency,
    autorun: false,
  });
  worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  return {
    go: () => void worker.run(),
    close: async () => {
      await worker.close();
    },
  };
}

async function main(): Promise<void> {
  const url = env('REDIS_URL', 'redis://127.0.0.1:6379');
  const concurrency = Number(env('CONCURRENCY', '32'));
  const runner =
    env('KIND') === 'bullmq' ? await bullmqRunner(url, concurrency) : await streamsRunner(url, concurrency);
  process.stdout.write('READY\n');
  let closing = false;
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'go') runner.go();
    if (line === 'mem') process.stdout.write(`MEM ${JSON.stringify(process.memoryUsage())}\n`);
    if (line === 'exit' && !closing) {
      closing = true;
      setTimeout(() => process.exit(0), 5_000).unref();
      void runner.close().finally(() => process.exit(0));
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`noop-worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
