import type Redis from 'ioredis';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import { StreamConsumer, type EntryHandler, type StreamConsumerOptions } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';

export function requestEnvelope(jobId: string) {
  return makeEnvelope(
    'job.requested',
    { jobId, actor: 'test' },
    { workflow: 'echo', inputs: { prompt: jobId }, userId: 'u1', source: 'api' },
  );
}

export async function appendRequest(redis: Redis, keys: StreamKeys, jobId: string): Promise<string> {
  return (await redis.xadd(keys.requests, '*', ENVELOPE_FIELD, encodeEnvelope(requestEnvelope(jobId))))!;
}

export function makeConsumer(
  redis: Redis,
  keys: StreamKeys,
  handle: EntryHandler,
  overrides: Partial<StreamConsumerOptions> = {},
): StreamConsumer {
  return new StreamConsumer(redis, keys, {
    streams: [keys.requests],
    group: 'gpu',
    consumer: 'gpu-test-1',
    concurrency: 4,
    claimIdleMs: 300,
    maxDeliveries: 3,
    deadLetterEndsJob: true,
    blockMs: 1000,
    handle,
    ...overrides,
  });
}

export async function groupPending(redis: Redis, stream: string, group: string): Promise<number> {
  const summary = (await redis.xpending(stream, group)) as unknown[];
  return Number(summary[0]);
}

export { StreamKeys };
