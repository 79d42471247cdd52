import { randomUUID } from 'node:crypto';
import { observeNewEnvelope } from '../common/observability/observability.hooks';
import {
  ENVELOPE_VERSION,
  JOB_EVENT_TYPES,
  type AnyJobEnvelope,
  type JobEnvelope,
  type JobEventPayloads,
  type JobEventType,
} from './job-event.types';

/** The single stream-entry field that carries the JSON envelope. */
export const ENVELOPE_FIELD = 'e';

type FieldKind = 'string' | 'number' | 'boolean' | 'object' | 'array';

/** Required payload fields per type: enough to make a handler's assumptions safe, cheap to check. */
const PAYLOAD_SHAPES: Record<JobEventType, Record<string, FieldKind>> = {
  'job.requested': { workflow: 'string', inputs: 'object', userId: 'string', source: 'string', ticket: 'number' },
  'job.accepted': { worker: 'string', instance: 'string', promptId: 'string', attempt: 'number' },
  'job.started': { worker: 'string', instance: 'string', promptId: 'string' },
  'job.progress': { value: 'number', max: 'number' },
  'job.completed': { outputs: 'array', instance: 'string', promptId: 'string', timings: 'object' },
  'job.failed': { code: 'string', message: 'string', retriable: 'boolean', willRetry: 'boolean' },
  'job.cancel-requested': { by: 'string' },
  'job.cancelled': { by: 'string', whileQueued: 'boolean' },
  'job.delivered': { chatId: 'number', messageId: 'number' },
  'job.dead-lettered': {
    stream: 'string',
    group: 'string',
    entryId: 'string',
    reason: 'string',
    deliveries: 'number',
    endsJob: 'boolean',
  },
};

const KNOWN_TYPES = new Set<string>(JOB_EVENT_TYPES);
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export interface EnvelopeMeta {
  jobId: string;
  correlationId?: string;
  actor: string;
  eventId?: string;
  occurredAt?: Date;
}

export function makeEnvelope<T extends JobEventType>(
  type: T,
  meta: EnvelopeMeta,
  payload: JobEventPayloads[T],
): JobEnvelope<T> {
  const envelope: JobEnvelope<T> = {
    type,
    v: ENVELOPE_VERSION,
    eventId: meta.eventId ?? randomUUID(),
    jobId: meta.jobId,
    correlationId: meta.correlationId ?? meta.jobId,
    occurredAt: (meta.occurredAt ?? new Date()).toISOString(),
    actor: meta.actor,
    payload,
  };
  // Tracing on: the event carries the trace context on to the next process; Sentry on: a failure is reported.
  observeNewEnvelope(envelope);
  return envelope;
}

export function encodeEnvelope(envelope: JobEnvelope): string {
  return JSON.stringify(envelope);
}

export type DecodeResult = { ok: true; envelope: AnyJobEnvelope } | { ok: false; reason: string };

/** Decodes a raw stream entry (flat field/value array). Never throws: a bad entry yields a reason. */
export function decodeEntry(fields: readonly string[]): DecodeResult {
  let raw: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === ENVELOPE_FIELD) raw = fields[i + 1];
  }
  if (raw === undefined) return { ok: false, reason: `entry has no "${ENVELOPE_FIELD}" field` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `envelope is not JSON: ${(err as Error).message}` };
  }
  const reason = envelopeProblem(parsed);
  return reason === undefined ? { ok: true, envelope: parsed as AnyJobEnvelope } : { ok: false, reason };
}

function envelopeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'envelope is not a JSON object';
  if (typeof value.type !== 'string' || !KNOWN_TYPES.has(value.type)) {
    return `unknown event type ${JSON.stringify(value.type)}`;
  }
  if (value.v !== ENVELOPE_VERSION) return `unsupported envelope version ${JSON.stringify(value.v)}`;
  for (const key of ['eventId', 'jobId', 'correlationId'] as const) {
    const id = value[key];
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return `envelope.${key} must be an id (1-128 of A-Za-z0-9_.:-)`;
  }
  if (typeof value.actor !== 'string' || value.actor.length === 0) return 'envelope.actor must be a non-empty string';
  if (typeof value.occurredAt !== 'string' || Number.isNaN(Date.parse(value.occurredAt))) {
    return 'envelope.occurredAt must be an ISO date';
  }
  if (!isObject(value.payload)) return 'envelope.payload must be an object';
  const shape = PAYLOAD_SHAPES[value.type as JobEventType];
  for (const [field, kind] of Object.entries(shape)) {
    if (!hasKind(value.payload[field], kind)) return `payload.${field} of ${value.type} must be ${kind}`;
  }
  return undefined;
}

function hasKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeof value === kind;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
