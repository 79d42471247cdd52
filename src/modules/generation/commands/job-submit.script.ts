import type Redis from 'ioredis';
import { JOB_SUBMIT } from '../../../redis/scripts';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import type { StreamKeys } from '../../../streams/stream-keys';
import { viewToHash } from '../projection/job-view.codec';
import { reduceJobView } from '../projection/job-view.reducer';

export const TICKET_PLACEHOLDER = '__TICKET__';

export type SubmitOutcome =
  | { kind: 'accepted'; jobId: string; ticket: number; entryId: string }
  | { kind: 'duplicate'; jobId: string; fingerprint: string }
  | { kind: 'limit'; active: number };

export interface SubmitScriptArgs {
  jobId: string;
  idempotencyKey: string;
  userId: string;
  maxActive: number;
  envelopeJson: string;
  stream: string;
  workflow: string;
  createdAt: string;
  priority: boolean;
  fingerprint: string;
  idempotencyTtlSeconds: number;
  recordTtlSeconds: number;
}

export async function runSubmitScript(redis: Redis, keys: StreamKeys, a: SubmitScriptArgs): Promise<SubmitOutcome> {
  // The job's first view, from the one reducer; the script adds the ticket it draws.
  const { ticket: _ticket, ...viewFields } = viewToHash(
    reduceJobView(undefined, JSON.parse(a.envelopeJson) as AnyJobEnvelope),
  );
  const reply = (await JOB_SUBMIT.run(
    redis,
    [
      a.idempotencyKey,
      keys.userActive(a.userId),
      keys.ticketCounter,
      keys.queue,
      a.stream,
      keys.view(a.jobId),
      keys.timeline(a.jobId),
    ],
    [
      a.jobId,
      String(a.maxActive),
      a.envelopeJson,
      String(a.idempotencyTtlSeconds),
      String(a.recordTtlSeconds),
      a.workflow,
      a.userId,
      a.createdAt,
      a.priority ? '1' : '0',
      a.fingerprint,
      a.stream.slice(keys.prefix.length),
      ...Object.entries(viewFields).flat(),
    ],
  )) as string[];
  const [kind, first = '', second = '', third = ''] = reply;
  if (kind === 'accepted') return { kind, jobId: first, ticket: Number(second), entryId: third };
  if (kind === 'limit') return { kind, active: Number(first) };
  const separator = first.lastIndexOf('|');
  return { kind: 'duplicate', jobId: first.slice(0, separator), fingerprint: first.slice(separator + 1) };
}
