import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { observeNewEnvelope } from '../common/observability/observability.hooks';
import { readable } from '../common/schema/schema-helpers';
import { compileSchema, describeValue, formatPath, type SchemaCheck } from '../common/schema/schema-validator';
import { JOB_EVENT_SCHEMAS, type EventDefinition } from './job-event.schemas';
import type { AnyJobEnvelope, JobEnvelope, JobEventPayloads, JobEventType } from './job-event.types';

/** The stream-entry field that carries the JSON envelope. */
export const ENVELOPE_FIELD = 'e';
/** The stream-entry field that carries a `job.requested` entry's queue ticket (set by the submit script). */
export const TICKET_FIELD = 'ticket';

const Id = readable(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' }), 'an id (1-128 of A-Za-z0-9_.:-)');

/** What every envelope carries whatever its type; the payload is checked by its type's schema after this. */
const EnvelopeHeaderSchema = Type.Object({
  eventId: Id,
  jobId: Id,
  correlationId: Id,
  occurredAt: readable(Type.String({ format: 'iso-date' }), 'an ISO date'),
  // A pattern, not minLength: its failure is worded by the phrase, a length bound by its numbers.
  actor: readable(Type.String({ pattern: '^[\\s\\S]' }), 'a non-empty string'),
  payload: readable(Type.Object({}), 'an object'),
  traceparent: Type.Optional(Type.String()),
});
const headerCheck = compileSchema(EnvelopeHeaderSchema);

const TICKET_TEXT = /^\d{1,15}$/;

interface ReadableVersion {
  readonly check: SchemaCheck<Record<string, unknown>>;
  /** Upcasters from this version to the current one, in order (none for the current version). */
  readonly upcasts: EventDefinition['upcasters'];
}

/** Every (type, version) this release reads, its payload check compiled once at start-up. */
const READABLE = new Map<string, Map<unknown, ReadableVersion>>(
  Object.entries(JOB_EVENT_SCHEMAS).map(([type, def]: [string, EventDefinition]) => {
    const versions = new Map<unknown, ReadableVersion>();
    def.upcasters.forEach((u, i) => {
      versions.set(u.from, { check: compileSchema(u.payload), upcasts: def.upcasters.slice(i) });
    });
    versions.set(def.version, { check: compileSchema(def.payload), upcasts: [] });
    return [type, versions];
  }),
);

export interface EnvelopeMeta {
  jobId: string;
  correlationId?: string;
  actor: string;
  eventId?: string;
  occurredAt?: Date;
  /** `job.requested` written outside the submit script (tests, tools): its ticket, appended as its own field. */
  ticket?: number;
}

export function makeEnvelope<T extends JobEventType>(
  type: T,
  meta: EnvelopeMeta,
  payload: JobEventPayloads[T],
): JobEnvelope<T> {
  const envelope: JobEnvelope<T> = {
    type,
    v: JOB_EVENT_SCHEMAS[type].version,
    eventId: meta.eventId ?? randomUUID(),
    jobId: meta.jobId,
    correlationId: meta.correlationId ?? meta.jobId,
    occurredAt: (meta.occurredAt ?? new Date()).toISOString(),
    actor: meta.actor,
    payload,
    ...(meta.ticket !== undefined ? { ticket: meta.ticket } : {}),
  };
  // Tracing on: the event carries the trace context on to the next process; Sentry on: a failure is reported.
  observeNewEnvelope(envelope);
  return envelope;
}

/** The JSON of the `e` field: the envelope without what travels in fields of its own (the ticket). */
export function encodeEnvelope(envelope: JobEnvelope): string {
  if (envelope.ticket === undefined) return JSON.stringify(envelope);
  const { ticket: _ticket, ...json } = envelope;
  return JSON.stringify(json);
}

/** The stream entry's fields for an envelope: `e`, and `ticket` when it has one. */
export function entryFields(envelope: JobEnvelope): string[] {
  const fields = [ENVELOPE_FIELD, encodeEnvelope(envelope)];
  if (envelope.ticket !== undefined) fields.push(TICKET_FIELD, String(envelope.ticket));
  return fields;
}

export type DecodeResult = { ok: true; envelope: AnyJobEnvelope } | { ok: false; reason: string };

/**
 * Decodes a raw stream entry (flat field/value array): checks the envelope against its type's schema at the version
 * it was written with, then upcasts it to the version this release writes, the entry's ticket merged in. Never
 * throws: a bad entry yields a reason naming the field.
 */
export function decodeEntry(fields: readonly string[]): DecodeResult {
  let raw: string | undefined;
  let ticket: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === ENVELOPE_FIELD) raw = fields[i + 1];
    else if (fields[i] === TICKET_FIELD) ticket = fields[i + 1];
  }
  if (raw === undefined) return { ok: false, reason: `entry has no "${ENVELOPE_FIELD}" field` };
  if (ticket !== undefined && !TICKET_TEXT.test(ticket)) {
    return { ok: false, reason: `entry field "${TICKET_FIELD}" must be a ticket number, got ${describeValue(ticket)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `envelope is not JSON: ${(err as Error).message}` };
  }
  return decodeParsed(parsed, ticket === undefined ? undefined : Number(ticket));
}

function decodeParsed(value: unknown, ticket: number | undefined): DecodeResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'envelope is not a JSON object' };
  }
  const envelope = value as Record<string, unknown>;
  const versions = typeof envelope.type === 'string' ? READABLE.get(envelope.type) : undefined;
  if (!versions) return { ok: false, reason: `unknown event type ${JSON.stringify(envelope.type)}` };
  const type = envelope.type as JobEventType;
  const version = versions.get(envelope.v);
  if (!version) {
    const known = [...versions.keys()].join(', ');
    return {
      ok: false,
      reason: `unsupported envelope version ${JSON.stringify(envelope.v)} of ${type} (this release reads ${known})`,
    };
  }
  const header = headerCheck.problem(envelope);
  if (header) return { ok: false, reason: `${formatPath('envelope', header.path)} ${header.message}` };
  const payload = version.check.problem(envelope.payload);
  if (payload) return { ok: false, reason: `${formatPath('payload', payload.path)} of ${type} ${payload.message}` };
  let current: { payload: Record<string, unknown>; ticket?: number } = {
    payload: envelope.payload as Record<string, unknown>,
    ...(ticket !== undefined ? { ticket } : {}),
  };
  for (const upcast of version.upcasts) current = upcast.up(current);
  const decoded: Record<string, unknown> = {
    ...envelope,
    v: JOB_EVENT_SCHEMAS[type].version,
    payload: current.payload,
  };
  if (current.ticket === undefined) delete decoded.ticket;
  else decoded.ticket = current.ticket;
  return { ok: true, envelope: decoded as unknown as AnyJobEnvelope };
}
