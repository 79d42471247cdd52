import type { RedisClient } from '../../src/redis/redis-client';
import { runCli } from '../../src/cli/run-cli';
import { StreamConsumer, type HandlerContext } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import type { JobEnvelope } from '../../src/streams/job-event.types';
import { TEST_REDIS_URL } from '../support/test-redis';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

interface CliOptions {
  env?: Record<string, string>;
  signal?: AbortSignal;
  user?: string;
}

/** Starts the CLI in-process against `prefix`; `out()` reads what it has printed so far (for `tail`). */
export function startCli(
  prefix: string,
  argv: string[],
  { env = {}, signal, user = 'tester' }: CliOptions = {},
): { result: Promise<CliRun>; out: () => string } {
  let out = '';
  let err = '';
  const result = runCli(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: { REDIS_URL: TEST_REDIS_URL, STREAM_PREFIX: prefix, ...env },
    signal,
    user,
  }).then((code) => ({ code, out, err }));
  return { result, out: () => out };
}

/** Runs the CLI in-process against `prefix`, capturing stdout and stderr. */
export function cli(prefix: string, argv: string[], options: CliOptions = {}): Promise<CliRun> {
  return startCli(prefix, argv, options).result;
}

export type GpuBehaviour = (
  event: JobEnvelope<'job.requested'>,
  ctx: HandlerContext,
  publish: StreamPublisher,
) => Promise<void>;

/** A stand-in gpu worker (group `gpu`) whose handler the test writes: fails, crashes or completes jobs. */
export async function startFakeGpu(
  redis: RedisClient,
  prefix: string,
  behaviour: GpuBehaviour,
  { maxDeliveries = 2, claimIdleMs = 100, name = 'gpu-test-1' } = {},
): Promise<StreamConsumer> {
  const keys = new StreamKeys(prefix);
  const publisher = new StreamPublisher(redis, keys);
  const consumer = new StreamConsumer(redis, keys, {
    streams: [keys.requestsPriority, keys.requests],
    group: 'gpu',
    consumer: name,
    concurrency: 2,
    claimIdleMs,
    maxDeliveries,
    deadLetterEndsJob: true,
    blockMs: 500,
    handle: (event, ctx) => (event.type === 'job.requested' ? behaviour(event, ctx, publisher) : Promise.resolve()),
  });
  await consumer.start();
  return consumer;
}

/** Runs a job "successfully" the way the real runner reports it. */
export const completeJob: GpuBehaviour = async (event, ctx, publisher) => {
  const meta = { jobId: event.jobId, correlationId: event.correlationId, actor: ctx.consumer };
  const placement = { instance: 'http://comfyui-test:8188', promptId: event.jobId };
  await publisher.publish('job.accepted', meta, { worker: ctx.consumer, attempt: ctx.deliveries, ...placement });
  await publisher.publish('job.started', meta, { worker: ctx.consumer, attempt: ctx.deliveries, ...placement });
  await publisher.publish('job.completed', meta, {
    outputs: [{ hash: 'a'.repeat(64), size: 10, type: 'image/png' }],
    ...placement,
    timings: { queuedMs: 1500, runMs: 4200 },
  });
};
