import { randomBytes, randomUUID } from 'node:crypto';
import { parseDlqEntry, type DlqRecord } from '../../src/streams/dead-letter.writer';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

type Stream = 'jobs:requests' | 'jobs:requests:priority' | 'jobs:events';
type Field = string | Buffer;

/** Groups reading each stream in this app (ROLE api,gpu,projector: no bot group). */
const GROUPS: Record<Stream, string[]> = {
  'jobs:requests': ['gpu', 'projector'],
  'jobs:requests:priority': ['gpu', 'projector'],
  'jobs:events': ['projector'],
};

const envelope = (patch: Record<string, unknown> = {}, payload: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'job.requested',
    v: 1,
    eventId: randomUUID(),
    jobId: `bad-entry-${randomUUID()}`,
    correlationId: randomUUID(),
    occurredAt: new Date().toISOString(),
    actor: 'bad-input-suite',
    payload: { workflow: 'txt2img', inputs: { prompt: 'x' }, userId: 'api:x', source: 'api', ticket: 1, ...payload },
    ...patch,
  });
const event = (type: string, payload: Record<string, unknown>) => envelope({ type, payload });
const without = (key: string) => {
  const { [key]: _dropped, ...rest } = JSON.parse(envelope()) as Record<string, unknown>;
  return JSON.stringify(rest);
};
const withoutPayloadField = (key: string) => {
  const parsed = JSON.parse(envelope()) as { payload: Record<string, unknown> };
  const { [key]: _dropped, ...payload } = parsed.payload;
  return JSON.stringify({ ...parsed, payload });
};

/**
 * Entries appended straight to a running app's real streams, as a buggy producer, a replay gone wrong or an
 * attacker with Redis access would write them. Each undecodable entry must be dead-lettered — once per group that
 * reads the stream, with the reason — and acknowledged, and the consumers must keep going: jobs submitted in
 * between and after all succeed. Well-formed requests the worker cannot run end failed with a reason instead.
 */
describe('bad stream entries on the live streams', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ROLE: 'api,gpu,projector',
      COMFYUI_SIM_STEP_MS: '1',
      CLAIM_IDLE_MS: '300',
      MAX_DELIVERIES: '3',
      USER_MAX_ACTIVE: '100',
    });
  });

  afterAll(async () => {
    await app.stop();
  });

  const key = (stream: Stream) => `${app.prefix}${stream}`;

  async function dlqFor(stream: Stream, id: string, groups: number): Promise<DlqRecord[]> {
    return pollUntil(
      async () =>
        (await app.redis.xrange(key('jobs:dlq' as Stream), '-', '+'))
          .map(([dlqId, fields]) => parseDlqEntry(dlqId, fields))
          .filter((d) => d.entryId === id && d.stream === key(stream)),
      (found) => found.length >= groups,
      { timeoutMs: 10_000, description: `DLQ entries for ${stream} ${id}` },
    );
  }

  async function goodJobSucceeds(): Promise<void> {
    const res = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'txt2img', inputs: { prompt: 'still working', width: 64, height: 64, steps: 2 } },
    });
    expect(res.status).toBe(202);
    await pollUntil(
      async () => (await app.http(`/v1/generations/${res.body.id}`)).body.status,
      (s) => s === 'succeeded',
      { timeoutMs: 20_000, description: 'a good job after the bad entries' },
    );
  }

  it.each<[string, Stream, Field[], RegExp]>([
    ['no envelope field', 'jobs:requests', ['payload', 'x', 'type', 'job.requested'], /has no "e" field/],
    ['truncated JSON', 'jobs:requests', [ENVELOPE_FIELD, '{"type":"job.requested","v":'], /not JSON/],
    ['JSON null', 'jobs:requests', [ENVELOPE_FIELD, 'null'], /not a JSON object/],
    ['a JSON array', 'jobs:requests', [ENVELOPE_FIELD, '[1,2]'], /not a JSON object/],
    ['a JSON string', 'jobs:requests', [ENVELOPE_FIELD, '"job.requested"'], /not a JSON object/],
    [
      'an unknown type',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ type: 'job.exploded' })],
      /unknown event type "job.exploded"/,
    ],
    ['no type', 'jobs:requests', [ENVELOPE_FIELD, without('type')], /unknown event type/],
    // job.requested is read at versions 1 (ticket in the payload) and 2 (ticket as the entry's field): 3 is unknown.
    [
      'version 3 (from a later release)',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ v: 3 })],
      /unsupported envelope version 3 of job\.requested \(this release reads 1, 2\)/,
    ],
    [
      'a ticket field that is not a number',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ v: 2 }), 'ticket', 'seven'],
      /entry field "ticket" must be a ticket number, got string "seven"/,
    ],
    [
      'payload.inputs holding an array value',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({}, { inputs: { prompt: ['x'] } })],
      /payload\.inputs\.prompt of job\.requested must be a string, number, boolean, null or \{ blob/,
    ],
    [
      'version "1" (a string)',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ v: '1' })],
      /unsupported envelope version "1"/,
    ],
    ['no payload', 'jobs:requests', [ENVELOPE_FIELD, without('payload')], /payload must be an object/],
    ['payload null', 'jobs:requests', [ENVELOPE_FIELD, envelope({ payload: null })], /payload must be an object/],
    [
      'no payload.workflow',
      'jobs:requests',
      [ENVELOPE_FIELD, withoutPayloadField('workflow')],
      /payload\.workflow of job\.requested must be string/,
    ],
    [
      'payload.ticket as a string',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({}, { ticket: '1' })],
      /payload\.ticket .*number/,
    ],
    [
      'payload.inputs as an array',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({}, { inputs: ['x'] })],
      /payload\.inputs .*object/,
    ],
    [
      'a path-like jobId',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ jobId: '../../etc/passwd' })],
      /envelope\.jobId must be an id/,
    ],
    [
      'a 129-character jobId',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ jobId: 'j'.repeat(129) })],
      /envelope\.jobId must be an id/,
    ],
    ['no eventId', 'jobs:requests', [ENVELOPE_FIELD, without('eventId')], /envelope\.eventId/],
    [
      'occurredAt "yesterday"',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ occurredAt: 'yesterday' })],
      /occurredAt must be an ISO date/,
    ],
    ['an empty actor', 'jobs:requests', [ENVELOPE_FIELD, envelope({ actor: '' })], /actor must be a non-empty string/],
    [
      'a 2 MB entry',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope({ type: 'job.huge', pad: 'x'.repeat(2 * 1024 * 1024) })],
      /unknown event type "job.huge"/,
    ],
    ['binary garbage', 'jobs:requests', [ENVELOPE_FIELD, randomBytes(1024)], /not JSON|not a JSON object/],
    [
      'two envelope fields, the last one broken',
      'jobs:requests',
      [ENVELOPE_FIELD, envelope(), ENVELOPE_FIELD, '{'],
      /not JSON/,
    ],
    ['garbage on the priority stream', 'jobs:requests:priority', [ENVELOPE_FIELD, 'garbage'], /not JSON/],
    [
      'events: job.completed with outputs not a list',
      'jobs:events',
      [ENVELOPE_FIELD, event('job.completed', { outputs: 'x', instance: 'i', promptId: 'p', timings: {} })],
      /payload\.outputs of job\.completed must be array/,
    ],
    [
      'events: job.failed without a code',
      'jobs:events',
      [ENVELOPE_FIELD, event('job.failed', { message: 'm', retriable: false, willRetry: false })],
      /payload\.code of job\.failed must be string/,
    ],
    [
      'events: job.progress with value "NaN"',
      'jobs:events',
      [ENVELOPE_FIELD, event('job.progress', { value: 'NaN', max: 10 })],
      /payload\.value of job\.progress must be number/,
    ],
    [
      'events: an unknown type',
      'jobs:events',
      [ENVELOPE_FIELD, event('job.teleported', {})],
      /unknown event type "job.teleported"/,
    ],
  ])('%s → dead-lettered once per group, with the reason', async (_name, stream, fields, reason) => {
    const id = (await app.redis.xadd(key(stream), '*', ...(fields as string[])))!;
    const groups = GROUPS[stream];
    const letters = await dlqFor(stream, id, groups.length);
    expect(letters.map((l) => l.group).sort()).toEqual([...groups].sort());
    for (const letter of letters) {
      expect(letter.reason).toMatch(/^malformed entry: /);
      expect(letter.reason).toMatch(reason);
      expect(letter.reason.length).toBeLessThanOrEqual(2000);
    }
    // Acknowledged everywhere: nothing left pending for a retry loop to chew on.
    for (const group of groups) {
      const pending = (await app.redis.xpending(key(stream), group, '-', '+', 10)) as unknown[][];
      expect(pending.filter((p) => p[0] === id)).toHaveLength(0);
    }
  });

  it('consumers keep going after all of them: a good job succeeds', async () => {
    await goodJobSucceeds();
  });

  describe('well-formed requests the worker cannot run → failed with the reason, not dead-lettered', () => {
    async function request(jobId: string, workflow: string, inputs: Record<string, unknown>): Promise<string> {
      const entry = makeEnvelope(
        'job.requested',
        { jobId, actor: 'bad-input-suite' },
        { workflow, inputs: inputs as never, userId: 'api:x', source: 'api' },
      );
      return (await app.redis.xadd(key('jobs:requests'), '*', ENVELOPE_FIELD, encodeEnvelope(entry)))!;
    }

    it.each<[string, string, Record<string, unknown>, string]>([
      ['an unknown workflow', 'no-such-workflow', {}, 'unknown_workflow'],
      ['an input the workflow does not have', 'txt2img', { prompt: 'x', '3.inputs.seed': 1 }, 'bad_inputs'],
      ['an input of the wrong type', 'txt2img', { prompt: 'x', steps: 'many' }, 'bad_inputs'],
      [
        'an image that is not in the blob store',
        'edit',
        { prompt: 'x', image: { blob: { hash: 'f'.repeat(64), size: 10, type: 'image/png' } } },
        'input_expired',
      ],
    ])('%s', async (_name, workflow, inputs, code) => {
      const jobId = randomUUID();
      const entryId = await request(jobId, workflow, inputs);
      const view = await pollUntil(
        async () => (await app.http(`/v1/generations/${jobId}`)).body,
        (v) => v.status === 'failed' || v.status === 'succeeded',
        { timeoutMs: 10_000, description: `job ${jobId} to end` },
      );
      expect(view.status).toBe('failed');
      expect(view.error.code).toBe(code);
      expect(view.error.message).toMatch(/\S/);
      const dlq = (await app.redis.xrange(key('jobs:dlq' as Stream), '-', '+')).map(([i, f]) => parseDlqEntry(i, f));
      expect(dlq.filter((d) => d.entryId === entryId)).toHaveLength(0);
    });

    // Was a bug (fixed): JobRunnerController.onRequested only skips a request whose job already ended; two
    // entries of one running job (a `cli replay` into the live prefix, a producer bug) run at the same time on two
    // instances — same prompt_id, GPU work done twice, two job.completed. A per-job run lease would stop it.
    it('the same request appended twice runs once and ends once', async () => {
      const jobId = randomUUID();
      await request(jobId, 'txt2img', { prompt: 'twice', width: 64, height: 64, steps: 2 });
      await request(jobId, 'txt2img', { prompt: 'twice', width: 64, height: 64, steps: 2 });
      await pollUntil(
        async () => (await app.http(`/v1/generations/${jobId}`)).body.status,
        (s) => s === 'succeeded',
        { timeoutMs: 15_000 },
      );
      await pollUntil(
        async () => Number(((await app.redis.xpending(key('jobs:requests'), 'gpu')) as unknown[])[0]),
        (pending) => pending === 0,
      );
      const events = (await app.redis.xrange(key('jobs:events'), '-', '+'))
        .map(([, f]) => JSON.parse(f[1]!))
        .filter((e) => e.jobId === jobId);
      expect(events.filter((e) => e.type === 'job.completed')).toHaveLength(1);
    });
  });

  it('and a last good job still succeeds', async () => {
    await goodJobSucceeds();
  });
});
