import { createHash } from 'node:crypto';
import { BlobLifetimesRepository } from '../../src/blobs/blob-lifetimes.repository';
import type Redis from 'ioredis';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import type { JobEventPayloads, JobEventType } from '../../src/streams/job-event.types';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { cli } from './cli-harness';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0); // 2024-05-01T10:00:00Z
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
// Content-addressed like every blob: the hash is the bytes' own.
const IMAGE = { hash: createHash('sha256').update('png!').digest('hex'), size: 4, type: 'image/png' };

/** Appends with an explicit id (= occurredAt), so the test controls exactly which entries a window holds. */
async function append<T extends JobEventType>(
  redis: Redis,
  stream: string,
  offsetMs: number,
  type: T,
  jobId: string,
  payload: JobEventPayloads[T],
): Promise<string> {
  const envelope = makeEnvelope(type, { jobId, actor: 'test', occurredAt: new Date(T0 + offsetMs) }, payload);
  return (await redis.xadd(stream, `${T0 + offsetMs}-0`, ENVELOPE_FIELD, encodeEnvelope(envelope)))!;
}

const request = (workflow: string, inputs: JobEventPayloads['job.requested']['inputs'] = {}) => ({
  workflow,
  inputs,
  userId: 'u1',
  source: 'api' as const,
  ticket: 1,
});

/** Every key under a prefix with its full content, to prove a command changed nothing there. */
async function dump(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const keys = (await redis.keys(`${prefix}*`)).sort();
  for (const key of keys) {
    const type = await redis.type(key);
    out[key] =
      type === 'stream'
        ? { entries: await redis.xrange(key, '-', '+'), groups: await redis.xinfo('GROUPS', key) }
        : type === 'hash'
          ? await redis.hgetall(key)
          : type === 'string'
            ? await redis.get(key)
            : type;
  }
  return out;
}

describe('cli replay: a time window into a sandbox prefix, live data untouched (real Redis)', () => {
  const live = uniquePrefix('replay-live');
  const sandbox = uniquePrefix('replay-sandbox');
  const keys = new StreamKeys(live);
  let redis: Redis;
  let projector: TestApp | undefined;

  beforeAll(async () => {
    redis = testRedis();
    // Job A before the window, B and C inside it, D after it.
    await append(redis, keys.requests, 0, 'job.requested', 'job-a', request('txt2img'));
    await append(redis, keys.events, 500, 'job.cancelled', 'job-a', { by: 'u1', whileQueued: true });
    await append(redis, keys.requests, 60_000, 'job.requested', 'job-b', request('edit', { image: { blob: IMAGE } }));
    await append(redis, keys.events, 61_000, 'job.accepted', 'job-b', {
      worker: 'w',
      instance: 'i',
      promptId: 'p',
      attempt: 1,
    });
    await append(redis, keys.requestsPriority, 62_000, 'job.requested', 'job-c', {
      ...request('txt2img'),
      priority: true,
    });
    await redis.xadd(keys.events, `${T0 + 62_500}-0`, 'garbage', 'x'); // unreadable: never copied
    await append(redis, keys.events, 63_000, 'job.failed', 'job-b', {
      code: 'oom',
      message: 'CUDA out of memory',
      retriable: false,
      willRetry: false,
    });
    await append(redis, keys.requests, 120_000, 'job.requested', 'job-d', request('txt2img'));
    // As the store keeps it: the bytes, and the index entry that says who holds them until when.
    await redis.set(keys.blob(IMAGE.hash), 'png!', 'EX', 3600);
    await new BlobLifetimesRepository(redis, keys).acquire(IMAGE.hash, 'in:job-a', 3_600_000, 4);
  });

  afterAll(async () => {
    await projector?.stop();
    await cleanupPrefix(redis, live);
    await cleanupPrefix(redis, sandbox);
    redis.disconnect();
  });

  const window = ['--from', iso(60_000), '--to', iso(63_000)];

  it('dry run by default: prints the window, writes nothing anywhere', async () => {
    const before = await dump(redis, live);
    const dry = await cli(live, ['replay', ...window]);
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`dry run: would append 4 entries`);
    expect(dry.out).toContain(`to prefix ${live}`);
    expect(dry.out).toMatch(/job\.requested: 2/);
    expect(dry.out).toMatch(/1 unreadable/);
    expect(dry.out).toMatch(/job-b[\s\S]*job-c/);
    expect(dry.out).not.toContain('job-a');
    expect(dry.out).not.toContain('job-d');
    expect(dry.out).toContain('nothing written');
    expect(await dump(redis, live)).toEqual(before);
    expect(await redis.keys(`${sandbox}*`)).toEqual([]);

    const json = JSON.parse((await cli(live, ['replay', ...window, '--into', sandbox, '--dry-run', '--json'])).out);
    expect(json).toMatchObject({ dryRun: true, target: sandbox });
    expect(json.items.map((i: { jobId: string; type: string }) => `${i.jobId}:${i.type}`)).toEqual([
      'job-b:job.requested',
      'job-b:job.accepted',
      'job-c:job.requested',
      'job-b:job.failed',
    ]);
    expect(await redis.keys(`${sandbox}*`)).toEqual([]);
  });

  it('--into <sandbox> copies exactly the window (and its blobs); a sandbox pipeline runs on it', async () => {
    const before = await dump(redis, live);
    const run = await cli(live, ['replay', ...window, '--into', sandbox]);
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toContain(`appended 4 entries to prefix ${sandbox}`);
    expect(run.out).toContain('blobs copied: 1, missing (expired): 0');
    expect(await dump(redis, live)).toEqual(before);

    const target = new StreamKeys(sandbox);
    const requests = await redis.xrange(target.requests, '-', '+');
    expect(requests.map(([, f]) => JSON.parse(f[1]!).jobId)).toEqual(['job-b']);
    expect(requests[0]![1]).toEqual([
      ENVELOPE_FIELD,
      expect.any(String),
      'replayOf',
      `${live}jobs:requests|${T0 + 60_000}-0`,
    ]);
    expect((await redis.xrange(target.requestsPriority, '-', '+')).map(([, f]) => JSON.parse(f[1]!).jobId)).toEqual([
      'job-c',
    ]);
    expect((await redis.xrange(target.events, '-', '+')).map(([, f]) => JSON.parse(f[1]!).type)).toEqual([
      'job.accepted',
      'job.failed',
    ]);
    expect(await redis.get(target.blob(IMAGE.hash))).toBe('png!');
    expect(await new BlobLifetimesRepository(redis, target).isAlive(IMAGE.hash)).toBe(true);

    // A local pipeline on the sandbox prefix re-runs the window: here the projector rebuilds the read models.
    projector = await startTestApp({ ROLE: 'projector' }, sandbox);
    await pollUntil(
      () => redis.hgetall(target.view('job-b')),
      (v) => v.status === 'failed',
      { description: 'sandbox projection of job-b' },
    );
    expect(await redis.hget(target.view('job-c'), 'status')).toBe('queued');
    expect(await redis.exists(keys.view('job-b'))).toBe(0);
    expect(await dump(redis, live)).toEqual(before);
  });

  it('--type narrows the window; stream ids work as bounds', async () => {
    const json = JSON.parse(
      (await cli(live, ['replay', '--from', `${T0}-0`, '--to', `${T0 + 200_000}`, '--type', 'job.requested', '--json']))
        .out,
    );
    expect(json.items.map((i: { jobId: string }) => i.jobId)).toEqual(['job-a', 'job-b', 'job-c', 'job-d']);
    expect(json.skipped).toEqual({ otherType: 3, malformed: 1 });
  });

  it('never writes into the live prefix without --yes; bad bounds are usage errors', async () => {
    const before = await dump(redis, live);
    const refused = await cli(live, ['replay', ...window, '--into', live]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('is the live prefix: add --yes');
    expect(refused.err).toContain('Usage: cli replay');
    expect(await dump(redis, live)).toEqual(before);
    expect((await cli(live, ['replay'])).code).toBe(2);
    expect((await cli(live, ['replay', '--from', 'yesterday'])).code).toBe(2);
    expect((await cli(live, ['replay', '--from', iso(0), '--to', 'later'])).code).toBe(2);
    expect((await cli(live, ['replay', '--from', iso(0), '--type', 'job.exploded'])).code).toBe(2);
    expect((await cli(live, ['replay', '--from', iso(0), '--into', 'bad prefix'])).code).toBe(2);
    const tooMany = await cli(live, ['replay', '--from', iso(0), '--limit', '2']);
    expect(tooMany.code).toBe(1);
    expect(tooMany.err).toContain('more than 2 entries');

    // With --yes the operator really means it: the window is appended to the live streams.
    const lengthBefore = await redis.xlen(keys.requests);
    const yes = await cli(live, ['replay', '--from', iso(120_000), '--yes']);
    expect(yes.code).toBe(0);
    expect(yes.out).toContain(`appended 1 entries to prefix ${live} (LIVE)`);
    expect(await redis.xlen(keys.requests)).toBe(lengthBefore + 1);
    const [, fields] = (await redis.xrevrange(keys.requests, '+', '-', 'COUNT', 1))[0]!;
    expect(fields.slice(2)).toEqual(['replayOf', `${live}jobs:requests|${T0 + 120_000}-0`]);
  });
});
