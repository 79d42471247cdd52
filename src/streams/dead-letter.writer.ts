import type { RedisClient } from '../redis/redis-client';
import { ENVELOPE_FIELD, entryFields, makeEnvelope, TICKET_FIELD } from './envelope.codec';
import type { AnyJobEnvelope } from './job-event.types';
import type { StreamKeys } from './stream-keys';

export interface DeadLetter {
  stream: string;
  group: string;
  consumer: string;
  id: string;
  fields: readonly string[];
  deliveries: number;
  reason: string;
  envelope?: AnyJobEnvelope;
  /** The dead letter ends the job (the work itself could not be done), so the projection marks it failed. */
  endsJob: boolean;
}

/** One DLQ entry's fields, as operators (CLI, bot /dlq) read them. */
export interface DlqRecord {
  id: string;
  stream: string;
  group: string;
  entryId: string;
  consumer: string;
  reason: string;
  deliveries: number;
  at: string;
  jobId?: string;
  type?: string;
  raw: string;
  /** The dead entry's ticket field (a request written since its ticket left the envelope). */
  ticket?: string;
  history: unknown[];
}

/**
 * Moves an entry to the DLQ atomically: DLQ append, `job.dead-lettered` event (when the entry names a job),
 * ack in the source group, and the attempt history cleared — in one MULTI so a crash leaves either all or none.
 */
export class DeadLetterWriter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async write(letter: DeadLetter): Promise<void> {
    const attemptsKey = this.keys.attempts(letter.group, letter.stream, letter.id);
    const history = await this.redis.lrange(attemptsKey, 0, -1);
    const raw = rawEnvelope(letter.fields);
    const multi = this.redis.multi();
    multi.xadd(
      this.keys.dlq,
      '*',
      'stream',
      letter.stream,
      'group',
      letter.group,
      'entryId',
      letter.id,
      'consumer',
      letter.consumer,
      'reason',
      letter.reason.slice(0, 2000),
      'deliveries',
      String(letter.deliveries),
      'at',
      new Date().toISOString(),
      'jobId',
      letter.envelope?.jobId ?? '',
      'type',
      letter.envelope?.type ?? '',
      'history',
      `[${history.join(',')}]`,
      ENVELOPE_FIELD,
      raw,
      // A request's ticket travels beside its envelope: kept with it, so the record decodes as the entry did.
      ...ticketOf(letter.fields),
    );
    if (letter.envelope) {
      const event = makeEnvelope(
        'job.dead-lettered',
        { jobId: letter.envelope.jobId, correlationId: letter.envelope.correlationId, actor: letter.consumer },
        {
          stream: letter.stream,
          group: letter.group,
          entryId: letter.id,
          originalType: letter.envelope.type,
          reason: letter.reason.slice(0, 500),
          deliveries: letter.deliveries,
          endsJob: letter.endsJob,
        },
      );
      multi.xadd(this.keys.events, '*', ...entryFields(event));
    }
    multi.xack(letter.stream, letter.group, letter.id);
    multi.del(attemptsKey);
    await multi.exec();
  }
}

function rawEnvelope(fields: readonly string[]): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === ENVELOPE_FIELD) return fields[i + 1] ?? '';
  return JSON.stringify(fields).slice(0, 100_000);
}

function ticketOf(fields: readonly string[]): string[] {
  for (let i = 0; i + 1 < fields.length; i += 2)
    if (fields[i] === TICKET_FIELD) return [TICKET_FIELD, fields[i + 1] ?? ''];
  return [];
}

export function parseDlqEntry(id: string, fields: readonly string[]): DlqRecord {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? '', fields[i + 1] ?? '');
  let history: unknown[] = [];
  try {
    const parsed: unknown = JSON.parse(map.get('history') ?? '[]');
    if (Array.isArray(parsed)) history = parsed;
  } catch {
    history = [];
  }
  return {
    id,
    stream: map.get('stream') ?? '',
    group: map.get('group') ?? '',
    entryId: map.get('entryId') ?? '',
    consumer: map.get('consumer') ?? '',
    reason: map.get('reason') ?? '',
    deliveries: Number(map.get('deliveries') ?? 0),
    at: map.get('at') ?? '',
    jobId: map.get('jobId') || undefined,
    type: map.get('type') || undefined,
    raw: map.get(ENVELOPE_FIELD) ?? '',
    ...(map.has(TICKET_FIELD) ? { ticket: map.get(TICKET_FIELD) } : {}),
    history,
  };
}
