/** Content reference of bytes in the blob store; events carry these, never bytes. */
export interface BlobRef {
  hash: string;
  size: number;
  type: string;
}

export type JsonPrimitive = string | number | boolean | null;
/** Inputs after validation: JSON values, with images replaced by blob refs. */
export type JobInputValue = JsonPrimitive | { blob: BlobRef };

export interface TelegramOrigin {
  chatId: number;
  userId: number;
  messageId?: number;
  updateId?: number;
  language?: string;
}

/** Every event type, declared once with its payload: a wrong payload is a compile error. */
export interface JobEventPayloads {
  'job.requested': {
    workflow: string;
    inputs: Record<string, JobInputValue>;
    userId: string;
    source: 'api' | 'telegram' | 'redrive' | 'replay';
    ticket: number;
    priority?: boolean;
    telegram?: TelegramOrigin;
    /** Set on a re-drive: the DLQ entry id (jobs:dlq stream id) this request replaces. */
    redriveOf?: string;
    /** Who re-drove it, why and when (operator audit). */
    redrive?: { by: string; reason: string; at: string; dlqEntryId: string; originalJobId: string };
  };
  'job.accepted': { worker: string; instance: string; promptId: string; attempt: number };
  'job.started': { worker: string; instance: string; promptId: string; attempt?: number };
  'job.progress': { value: number; max: number; stage?: string; node?: string };
  'job.completed': {
    outputs: BlobRef[];
    instance: string;
    promptId: string;
    timings: { queuedMs: number; runMs: number };
  };
  'job.failed': { code: string; message: string; retriable: boolean; willRetry: boolean; attempt?: number };
  'job.cancel-requested': { by: string; reason?: string };
  'job.cancelled': { by: string; whileQueued: boolean };
  'job.delivered': { chatId: number; messageId: number };
  'job.dead-lettered': {
    stream: string;
    group: string;
    entryId: string;
    originalType?: string;
    reason: string;
    deliveries: number;
    endsJob: boolean;
  };
}

export type JobEventType = keyof JobEventPayloads;

export const JOB_EVENT_TYPES: readonly JobEventType[] = [
  'job.requested',
  'job.accepted',
  'job.started',
  'job.progress',
  'job.completed',
  'job.failed',
  'job.cancel-requested',
  'job.cancelled',
  'job.delivered',
  'job.dead-lettered',
];

export const ENVELOPE_VERSION = 1;

export interface JobEnvelope<T extends JobEventType = JobEventType> {
  type: T;
  v: typeof ENVELOPE_VERSION;
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
}

export type AnyJobEnvelope = { [T in JobEventType]: JobEnvelope<T> }[JobEventType];
