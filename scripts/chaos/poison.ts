import { randomBytes, randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import type { StreamKeys } from '../../src/streams/stream-keys';
import type { Rng } from './rng';

export type PoisonExpectation =
  /** Undecodable: every group reading the stream dead-letters it (with the reason) and keeps consuming. */
  | { kind: 'dlq' }
  /** A well-formed request the worker must refuse: the job ends failed with this code, nothing dead-lettered. */
  | { kind: 'failed'; code: string; jobId: string }
  /** A well-formed event about a job nobody asked for: no crash; consumers may ignore it. */
  | { kind: 'harmless' };

export interface InjectedEntry {
  label: string;
  stream: string;
  id: string;
  at: number;
  expect: PoisonExpectation;
}

type FieldValue = string | Buffer;

interface Recipe {
  label: string;
  stream: 'requests' | 'events';
  fields: () => FieldValue[];
  expect: () => PoisonExpectation;
}

const validRequest = (jobId: string, workflow: string, inputs: Record<string, unknown>) =>
  encodeEnvelope(
    makeEnvelope(
      'job.requested',
      { jobId, actor: 'chaos-poison' },
      { workflow, inputs: inputs as never, userId: 'chaos:poison', source: 'api' },
    ),
  );

/** Malformed and hostile stream entries, appended to the live streams while the fleet runs. */
export class PoisonInjector {
  readonly injected: InjectedEntry[] = [];
  private round = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
    private readonly rng: Rng,
  ) {}

  private recipes(): Recipe[] {
    const jobId = () => `chaos-poison-${randomUUID()}`;
    const envelope = (patch: Record<string, unknown>) =>
      JSON.stringify({
        type: 'job.requested',
        v: 1,
        eventId: randomUUID(),
        jobId: jobId(),
        correlationId: randomUUID(),
        occurredAt: new Date().toISOString(),
        actor: 'chaos-poison',
        payload: { workflow: 'txt2img', inputs: {}, userId: 'chaos:poison', source: 'api' },
        ...patch,
      });
    const dlq = (): PoisonExpectation => ({ kind: 'dlq' });
    return [
      {
        label: 'truncated JSON',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, '{"type":"job.requested","v":'],
        expect: dlq,
      },
      { label: 'no envelope field', stream: 'requests', fields: () => ['payload', 'hello', 'x', '1'], expect: dlq },
      { label: 'envelope is an array', stream: 'requests', fields: () => [ENVELOPE_FIELD, '[1,2,3]'], expect: dlq },
      {
        label: 'unknown type',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, envelope({ type: 'job.exploded' })],
        expect: dlq,
      },
      { label: 'wrong version', stream: 'requests', fields: () => [ENVELOPE_FIELD, envelope({ v: 99 })], expect: dlq },
      {
        label: 'missing payload fields',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, envelope({ payload: { inputs: {} } })],
        expect: dlq,
      },
      {
        label: 'path-like job id',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, envelope({ jobId: '../../etc/passwd' })],
        expect: dlq,
      },
      { label: 'binary garbage', stream: 'requests', fields: () => [ENVELOPE_FIELD, randomBytes(512)], expect: dlq },
      {
        label: 'huge entry (1 MB)',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, `{"type":"job.requested","pad":"${'x'.repeat(1024 * 1024)}"}`],
        expect: dlq,
      },
      {
        label: 'unknown workflow',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, ''],
        expect: () => ({ kind: 'failed', code: 'unknown_workflow', jobId: '' }),
      },
      {
        label: 'wrongly typed inputs',
        stream: 'requests',
        fields: () => [ENVELOPE_FIELD, ''],
        expect: () => ({ kind: 'failed', code: 'bad_inputs', jobId: '' }),
      },
      { label: 'event: truncated JSON', stream: 'events', fields: () => [ENVELOPE_FIELD, '{"type":'], expect: dlq },
      {
        label: 'event: unknown type',
        stream: 'events',
        fields: () => [ENVELOPE_FIELD, envelope({ type: 'job.teleported', payload: {} })],
        expect: dlq,
      },
      {
        label: 'event: wrong version',
        stream: 'events',
        fields: () => [ENVELOPE_FIELD, envelope({ type: 'job.completed', v: 0, payload: {} })],
        expect: dlq,
      },
      {
        label: 'event: completed without outputs',
        stream: 'events',
        fields: () => [
          ENVELOPE_FIELD,
          envelope({ type: 'job.completed', payload: { instance: 'x', promptId: 'y', timings: {} } }),
        ],
        expect: dlq,
      },
      {
        label: 'event: binary garbage',
        stream: 'events',
        fields: () => [ENVELOPE_FIELD, randomBytes(256)],
        expect: dlq,
      },
      {
        label: 'event: completed for a job nobody asked for',
        stream: 'events',
        fields: () => [
          ENVELOPE_FIELD,
          encodeEnvelope(
            makeEnvelope(
              'job.completed',
              { jobId: jobId(), actor: 'chaos-poison' },
              { outputs: [], instance: 'nowhere', promptId: randomUUID(), timings: { queuedMs: 0, runMs: 0 } },
            ),
          ),
        ],
        expect: () => ({ kind: 'harmless' }),
      },
    ];
  }

  /** Appends one round of every recipe (in a seeded order) to the live streams. */
  async injectRound(): Promise<InjectedEntry[]> {
    this.round++;
    const recipes = this.recipes();
    for (let i = recipes.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [recipes[i], recipes[j]] = [recipes[j]!, recipes[i]!];
    }
    const added: InjectedEntry[] = [];
    for (const recipe of recipes) {
      const stream = recipe.stream === 'requests' ? this.keys.requests : this.keys.events;
      let fields = recipe.fields();
      let expect = recipe.expect();
      if (expect.kind === 'failed') {
        const id = `chaos-poison-${randomUUID()}`;
        const body =
          expect.code === 'unknown_workflow'
            ? validRequest(id, 'no-such-workflow', {})
            : validRequest(id, 'txt2img', { prompt: 'typed wrong', width: 'wide' });
        fields = [ENVELOPE_FIELD, body];
        expect = { ...expect, jobId: id };
      }
      const id = (await this.redis.xadd(stream, '*', ...(fields as string[]))) as string;
      const entry: InjectedEntry = {
        label: `${recipe.label} (round ${this.round})`,
        stream,
        id,
        at: Date.now(),
        expect,
      };
      this.injected.push(entry);
      added.push(entry);
    }
    return added;
  }
}
