import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { ENVELOPE_FIELD, entryFields, makeEnvelope } from '../../src/streams/envelope.codec';
import type { JobEnvelope, JobInputValue } from '../../src/streams/job-event.types';
import { StreamKeys } from '../../src/streams/stream-keys';

/** echo-invert at 8×8: no sampler, so a "zero-time" job; the colour varies so the simulator's cache never hits. */
export function echoInputs(i: number): Record<string, JobInputValue> {
  return { prompt: 'bench', width: 8, height: 8, color: (i * 2654435761) % 0xffffff };
}

/** txt2img at 64×64 whose run time on the simulator is ≈ steps × stepMs. */
export function txt2imgInputs(steps: number): Record<string, JobInputValue> {
  return { prompt: 'a lighthouse, bench', width: 64, height: 64, steps };
}

export function requestEnvelope(
  i: number,
  workflow: string,
  inputs: Record<string, JobInputValue>,
  jobId = `bench-${randomUUID()}`,
): JobEnvelope<'job.requested'> {
  return makeEnvelope(
    'job.requested',
    { jobId, actor: 'bench', ticket: i + 1 },
    { workflow, inputs, userId: `bench-user-${i % 100}`, source: 'api' },
  );
}

/** Appends job.requested entries the way StreamPublisher does (`e` and `ticket` fields), pipelined in batches. */
export async function appendRequests(redis: Redis, prefix: string, envelopes: readonly JobEnvelope[]): Promise<void> {
  const keys = new StreamKeys(prefix);
  for (let start = 0; start < envelopes.length; start += 500) {
    const pipeline = redis.pipeline();
    for (const envelope of envelopes.slice(start, start + 500)) {
      pipeline.xadd(keys.requests, '*', ...entryFields(envelope));
    }
    await pipeline.exec();
  }
}

export interface StreamEvent {
  id: string;
  type: string;
  jobId: string;
  payload: Record<string, unknown>;
}

/** Every lifecycle event of a prefix (XRANGE in pages; bounded). */
export async function readEvents(redis: Redis, prefix: string): Promise<StreamEvent[]> {
  const key = new StreamKeys(prefix).events;
  const out: StreamEvent[] = [];
  let start = '-';
  for (let page = 0; page < 1_000; page++) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', 1000);
    for (const [id, fields] of entries) {
      const raw = fields[fields.indexOf(ENVELOPE_FIELD) + 1];
      const e = JSON.parse(raw) as { type: string; jobId: string; payload: Record<string, unknown> };
      out.push({ id, type: e.type, jobId: e.jobId, payload: e.payload });
    }
    if (entries.length < 1000) break;
    start = `(${entries[entries.length - 1][0]}`;
  }
  return out;
}

/** How many entries of `type` the events stream holds (XRANGE scan; fine for the few thousand a bench writes). */
export async function countEvents(redis: Redis, prefix: string, type: string): Promise<number> {
  return (await readEvents(redis, prefix)).filter((e) => e.type === type).length;
}

/** Stream entry id → its millisecond timestamp. */
export function idMs(id: string): number {
  return Number(id.split('-')[0]);
}
