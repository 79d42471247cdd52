import { Ctx, Payload } from '@nestjs/microservices';
import { PATTERN_METADATA } from '@nestjs/microservices/constants';
import {
  decodeEntry,
  encodeEnvelope,
  ENVELOPE_FIELD,
  entryFields,
  makeEnvelope,
} from '../../src/streams/envelope.codec';
import { JOB_EVENT_SCHEMAS } from '../../src/streams/job-event.schemas';
import {
  JOB_EVENT_TYPES,
  type EnvelopeOf,
  type JobEnvelope,
  type JobEventPayloads,
  type JobEventType,
} from '../../src/streams/job-event.types';
import { OnStreamEvent } from '../../src/streams/on-stream-event.decorator';
import type { StreamContext } from '../../src/streams/stream.context';

/** One payload per event type: typed by the schemas, so a new event type does not compile until it has one here. */
const SAMPLES: { [T in JobEventType]: JobEventPayloads[T] } = {
  'job.requested': {
    workflow: 'edit',
    inputs: {
      prompt: 'a cat',
      seed: 5,
      strong: true,
      none: null,
      image: { blob: { hash: 'ab', size: 3, type: 'image/png' } },
    },
    userId: 'tg:1',
    source: 'telegram',
    priority: true,
    telegram: { chatId: 1, userId: 1, messageId: 2, updateId: 3, language: 'ru' },
  },
  'job.accepted': { worker: 'gpu-a-1', instance: 'http://127.0.0.1:8188', promptId: 'p', attempt: 1 },
  'job.started': { worker: 'gpu-a-1', instance: 'http://127.0.0.1:8188', promptId: 'p', attempt: 1 },
  'job.progress': { value: 3, max: 20, stage: 'sampling', node: '3' },
  'job.completed': {
    outputs: [{ hash: 'cd', size: 10, type: 'image/png' }],
    instance: 'http://127.0.0.1:8188',
    promptId: 'p',
    timings: { queuedMs: 5, runMs: 900 },
  },
  'job.failed': { code: 'oom', message: 'CUDA out of memory', retriable: true, willRetry: false, attempt: 2 },
  'job.cancel-requested': { by: 'api', reason: 'user' },
  'job.cancelled': { by: 'api', whileQueued: false },
  'job.delivered': { chatId: 1, messageId: 9 },
  'job.dead-lettered': {
    stream: 'cr:jobs:requests',
    group: 'gpu',
    entryId: '1-0',
    originalType: 'job.requested',
    reason: 'exceeded MAX_DELIVERIES (5)',
    deliveries: 6,
    endsJob: true,
  },
};

const meta = { jobId: 'job-1', correlationId: 'corr-1', actor: 'test' };

/** A job.requested as release 55a6019 wrote it: v1, the ticket inside the payload, no ticket field. */
function v1Request(ticket: unknown): string {
  const { ticket: _none, ...envelope } = makeEnvelope('job.requested', meta, SAMPLES['job.requested']);
  return JSON.stringify({ ...envelope, v: 1, payload: { ticket, ...envelope.payload } });
}

describe('job event schemas: one per type, types and checks from it', () => {
  it.each(JOB_EVENT_TYPES.map((type) => [type]))('%s: what a writer makes, a reader decodes unchanged', (type) => {
    const envelope = makeEnvelope(type, type === 'job.requested' ? { ...meta, ticket: 12 } : meta, SAMPLES[type]);
    expect(envelope.v).toBe(JOB_EVENT_SCHEMAS[type].version);
    const decoded = decodeEntry(entryFields(envelope));
    expect(decoded).toEqual({ ok: true, envelope });
  });

  it('job.requested carries its ticket as the entry field, never inside the JSON', () => {
    const envelope = makeEnvelope('job.requested', { ...meta, ticket: 42 }, SAMPLES['job.requested']);
    const fields = entryFields(envelope);
    expect(fields.slice(2)).toEqual(['ticket', '42']);
    expect(fields[1]).toBe(encodeEnvelope(envelope));
    expect(JSON.parse(fields[1]!)).not.toHaveProperty('ticket');
    expect(JSON.parse(fields[1]!).payload).not.toHaveProperty('ticket');
    expect(fields[1]).not.toContain('__TICKET__');
  });

  describe('upcasting job.requested v1 (ticket in the payload) to v2 (ticket as its own field)', () => {
    it('moves the payload ticket to the envelope and reads as the current version', () => {
      const decoded = decodeEntry([ENVELOPE_FIELD, v1Request(7)]);
      expect(decoded.ok).toBe(true);
      const envelope = decoded.ok ? decoded.envelope : undefined;
      expect(envelope).toMatchObject({ type: 'job.requested', v: 2, ticket: 7, jobId: 'job-1' });
      expect(envelope?.payload).toEqual(SAMPLES['job.requested']);
      expect(envelope?.payload).not.toHaveProperty('ticket');
    });

    it("the entry's own ticket field wins over the one in a v1 payload", () => {
      const decoded = decodeEntry([ENVELOPE_FIELD, v1Request(7), 'ticket', '8']);
      expect(decoded.ok && decoded.envelope.ticket).toBe(8);
    });

    it('a v1 payload is still checked against the v1 schema, naming the field', () => {
      expect(decodeEntry([ENVELOPE_FIELD, v1Request('7')])).toEqual({
        ok: false,
        reason: 'payload.ticket of job.requested must be number, got string "7"',
      });
      expect(decodeEntry([ENVELOPE_FIELD, v1Request(undefined)])).toEqual({
        ok: false,
        reason: 'payload.ticket of job.requested must be number, got nothing',
      });
    });

    it('a v2 request without a ticket field decodes without a ticket (written outside the submit script)', () => {
      const envelope = makeEnvelope('job.requested', meta, SAMPLES['job.requested']);
      const decoded = decodeEntry([ENVELOPE_FIELD, encodeEnvelope(envelope)]);
      expect(decoded.ok && decoded.envelope.ticket).toBeUndefined();
    });
  });

  it.each<[string, unknown, string]>([
    [
      'a nested field of the wrong type',
      { ...SAMPLES['job.completed'], outputs: [{ hash: 'cd', size: '10', type: 'image/png' }] },
      'payload.outputs[0].size of job.completed must be number, got string "10"',
    ],
    [
      'a nested field missing',
      { ...SAMPLES['job.completed'], timings: { runMs: 1 } },
      'payload.timings.queuedMs of job.completed must be number, got nothing',
    ],
  ])('%s: the reason names the field', (_name, payload, reason) => {
    const envelope = { ...makeEnvelope('job.completed', meta, SAMPLES['job.completed']), payload };
    expect(decodeEntry([ENVELOPE_FIELD, JSON.stringify(envelope)])).toEqual({ ok: false, reason });
  });

  it('a requested source outside the schema is named with what is allowed', () => {
    const envelope = makeEnvelope('job.requested', meta, SAMPLES['job.requested']);
    const bad = JSON.stringify({ ...envelope, payload: { ...envelope.payload, source: 'fax' } });
    expect(decodeEntry([ENVELOPE_FIELD, bad])).toEqual({
      ok: false,
      reason: 'payload.source of job.requested must be one of: "api", "telegram", "redrive", "replay"',
    });
  });
});

describe('handlers are typed by the event they subscribe to', () => {
  class Handlers {
    @OnStreamEvent('job.completed', 'bot')
    completed(@Payload() event: JobEnvelope<'job.completed'>, @Ctx() _ctx: StreamContext) {
      return event.payload.outputs;
    }

    @OnStreamEvent(['job.failed', 'job.cancelled'], 'bot')
    ended(@Payload() event: EnvelopeOf<'job.failed' | 'job.cancelled'>) {
      return event.type === 'job.failed' ? event.payload.code : event.payload.by;
    }

    // @ts-expect-error -- subscribed to job.completed, typed as job.failed: does not compile
    @OnStreamEvent('job.completed', 'bot')
    mismatched(@Payload() event: JobEnvelope<'job.failed'>) {
      return event.payload.code;
    }

    // @ts-expect-error -- subscribed to two types, handles only one of them
    @OnStreamEvent(['job.failed', 'job.cancelled'], 'bot')
    tooNarrow(@Payload() event: JobEnvelope<'job.failed'>) {
      return event.payload.code;
    }
  }

  it('registers each subscribed type as a pattern of the method', () => {
    const patterns = (method: keyof Handlers) =>
      Reflect.getMetadata(PATTERN_METADATA, Handlers.prototype[method]) as string[];
    expect(patterns('completed')).toEqual(['job.completed']);
    expect(patterns('ended')).toEqual(['job.failed', 'job.cancelled']);
  });
});
