import type { Static } from '@sinclair/typebox';
import {
  JOB_EVENT_SCHEMAS,
  type BlobRefSchema,
  type JobInputValueSchema,
  type TelegramOriginSchema,
} from './job-event.schemas';

/** Content reference of bytes in the blob store; events carry these, never bytes. */
export type BlobRef = Static<typeof BlobRefSchema>;

export type JsonPrimitive = string | number | boolean | null;
/** Inputs after validation: JSON values, with images replaced by blob refs. */
export type JobInputValue = Static<typeof JobInputValueSchema>;

export type TelegramOrigin = Static<typeof TelegramOriginSchema>;

type Schemas = typeof JOB_EVENT_SCHEMAS;

export type JobEventType = keyof Schemas;

/** Every event type's payload, derived from its schema (job-event.schemas.ts): a wrong payload is a compile error. */
export type JobEventPayloads = { [T in JobEventType]: Static<Schemas[T]['payload']> };

/** The version of each event type's payload that this release writes (the envelope's `v`). */
export type JobEventVersion<T extends JobEventType> = Schemas[T]['version'];

export const JOB_EVENT_TYPES = Object.keys(JOB_EVENT_SCHEMAS) as readonly JobEventType[];

export interface JobEnvelope<T extends JobEventType = JobEventType> {
  type: T;
  v: JobEventVersion<T>;
  eventId: string;
  jobId: string;
  correlationId: string;
  occurredAt: string;
  actor: string;
  payload: JobEventPayloads[T];
  /**
   * W3C trace context of the span that made the event (OTEL_EXPORTER_OTLP_ENDPOINT set): the next process's spans
   * continue its trace. Optional: tracing may be off, and entries written before it existed have none.
   */
  traceparent?: string;
  /**
   * `job.requested` only: the job's queue ticket (submit order). Drawn inside the submit script, so it travels as the
   * stream entry's own `ticket` field, not in the JSON; readers merge it here (entries of v1 had it in the payload).
   */
  ticket?: number;
}

/** The envelope of any one of the types T, discriminated by `type` (a handler of several types switches on it). */
export type EnvelopeOf<T extends JobEventType> = { [K in T]: JobEnvelope<K> }[T];

export type AnyJobEnvelope = EnvelopeOf<JobEventType>;
