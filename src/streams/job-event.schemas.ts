import { Type, type Static, type TObject } from '@sinclair/typebox';
import { readable, StringEnum } from '../common/schema/schema-helpers';

/**
 * Every job event type, declared once: its payload schema and version (the envelope's `v`). The TypeScript types
 * (job-event.types.ts) and the check every reader runs (envelope.codec.ts) both come from here, so adding an event
 * type is one entry below plus its handlers.
 *
 * Changing a payload: bump `version`, keep the old schema as an upcaster from the old version (how an envelope of
 * it becomes one of the next), and readers keep reading streams written before the change.
 */

export const BlobRefSchema = Type.Object({ hash: Type.String(), size: Type.Number(), type: Type.String() });

/** Inputs after validation: JSON values, with images replaced by blob refs. */
export const JobInputValueSchema = readable(
  Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null(), Type.Object({ blob: BlobRefSchema })]),
  'a string, number, boolean, null or { blob: { hash, size, type } }',
);

export const TelegramOriginSchema = Type.Object({
  chatId: Type.Number(),
  userId: Type.Number(),
  messageId: Type.Optional(Type.Number()),
  updateId: Type.Optional(Type.Number()),
  language: Type.Optional(Type.String()),
});

const RedriveAuditSchema = Type.Object({
  by: Type.String(),
  reason: Type.String(),
  at: Type.String(),
  dlqEntryId: Type.String(),
  originalJobId: Type.String(),
});

const jobRequestedFields = {
  workflow: Type.String(),
  inputs: Type.Record(Type.String(), JobInputValueSchema),
  userId: Type.String(),
  source: StringEnum(['api', 'telegram', 'redrive', 'replay']),
  priority: Type.Optional(Type.Boolean()),
  telegram: Type.Optional(TelegramOriginSchema),
  /** Set on a re-drive: the DLQ entry id (jobs:dlq stream id) this request replaces. */
  redriveOf: Type.Optional(Type.String()),
  /** Who re-drove it, why and when (operator audit). */
  redrive: Type.Optional(RedriveAuditSchema),
};

/**
 * v1 (up to release 55a6019): the queue ticket inside the payload, put there by the submit script replacing a
 * placeholder in the JSON text. v2: the ticket is the entry's own `ticket` field (see envelope.codec.ts).
 */
const JobRequestedV1 = Type.Object({ ...jobRequestedFields, ticket: Type.Number() });

/** One older version of an event: its payload schema, and how an envelope of it becomes one of the next version. */
export interface Upcaster<From extends TObject = TObject, To extends TObject = TObject> {
  readonly from: number;
  readonly payload: From;
  readonly up: (envelope: { payload: Static<From>; ticket?: number }) => { payload: Static<To>; ticket?: number };
}

export interface EventDefinition<V extends number = number, P extends TObject = TObject> {
  readonly version: V;
  readonly payload: P;
  /** Oldest first; each one's `up` yields the version after it, the last one's the current version. */
  readonly upcasters: readonly Upcaster[];
}

function event<const V extends number, P extends TObject>(
  version: V,
  payload: P,
  upcasters: readonly Upcaster[] = [],
): EventDefinition<V, P> {
  return { version, payload, upcasters };
}

function upcaster<From extends TObject, To extends TObject>(
  from: number,
  payload: From,
  _to: To,
  up: Upcaster<From, To>['up'],
): Upcaster {
  return { from, payload, up: up };
}

const JobRequested = Type.Object(jobRequestedFields);

export const JOB_EVENT_SCHEMAS = {
  'job.requested': event(2, JobRequested, [
    // The ticket moves out of the payload; an entry's own ticket field (none on v1 entries) would win.
    upcaster(1, JobRequestedV1, JobRequested, ({ payload: { ticket, ...payload }, ticket: entryTicket }) => ({
      payload,
      ticket: entryTicket ?? ticket,
    })),
  ]),
  'job.accepted': event(
    1,
    Type.Object({ worker: Type.String(), instance: Type.String(), promptId: Type.String(), attempt: Type.Number() }),
  ),
  'job.started': event(
    1,
    Type.Object({
      worker: Type.String(),
      instance: Type.String(),
      promptId: Type.String(),
      attempt: Type.Optional(Type.Number()),
    }),
  ),
  'job.progress': event(
    1,
    Type.Object({
      value: Type.Number(),
      max: Type.Number(),
      stage: Type.Optional(Type.String()),
      node: Type.Optional(Type.String()),
    }),
  ),
  'job.completed': event(
    1,
    Type.Object({
      outputs: Type.Array(BlobRefSchema),
      instance: Type.String(),
      promptId: Type.String(),
      timings: Type.Object({ queuedMs: Type.Number(), runMs: Type.Number() }),
    }),
  ),
  'job.failed': event(
    1,
    Type.Object({
      code: Type.String(),
      message: Type.String(),
      retriable: Type.Boolean(),
      willRetry: Type.Boolean(),
      attempt: Type.Optional(Type.Number()),
    }),
  ),
  'job.cancel-requested': event(1, Type.Object({ by: Type.String(), reason: Type.Optional(Type.String()) })),
  'job.cancelled': event(1, Type.Object({ by: Type.String(), whileQueued: Type.Boolean() })),
  'job.delivered': event(1, Type.Object({ chatId: Type.Number(), messageId: Type.Number() })),
  'job.dead-lettered': event(
    1,
    Type.Object({
      stream: Type.String(),
      group: Type.String(),
      entryId: Type.String(),
      originalType: Type.Optional(Type.String()),
      reason: Type.String(),
      deliveries: Type.Number(),
      endsJob: Type.Boolean(),
    }),
  ),
} as const satisfies Record<string, EventDefinition>;
