import type { RedisClient } from '../../../redis/redis-client';
import { JOB_SUBMIT } from '../../../redis/scripts';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import type { StreamKeys } from '../../../streams/stream-keys';
import { viewToHash } from '../projection/job-view.codec';
import { reduceJobView } from '../projection/job-view.reducer';
import { TERMINAL_STATUSES, type JobStatus } from '../projection/job-view';

export type SubmitOutcome =
  /** vtime: with shards, the shard's fair-queue virtual time after the submit (VirtualTimeFloor learns it). */
  | { kind: 'accepted'; jobId: string; ticket: number; vtime?: number }
  | { kind: 'duplicate'; jobId: string; fingerprint: string }
  | { kind: 'limit'; active: number }
  | { kind: 'key-limit'; active: number };

/** The view field naming the API key's active set the job counts in: whoever ends the job removes it there. */
export const KEY_ACTIVE_SET_FIELD = 'keyActiveSet';

/**
 * A slot reserved for a job that never got its view (its process died between the reservation and the submit)
 * no longer counts after this long.
 */
const RESERVATION_GRACE_MS = 60_000;

/** Sorted set of an API key's active jobs (member: job id, score: ms it was reserved), for API_KEY_MAX_ACTIVE. */
export function apiKeyActiveKey(keys: StreamKeys, fingerprint: string): string {
  return `${keys.prefix}apikey:${fingerprint}:active`;
}

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
  /** API_KEY_MAX_ACTIVE: the caller's key's active set (apiKeyActiveKey) and its cap; absent: no per-key cap. */
  keyActive?: { key: string; max: number };
  /** Who takes turns in the fair queue: the API key's fingerprint when the job came with one, else the user. */
  account: string;
  /** QUEUE_DISPATCH_AHEAD: dispatched jobs left waiting in the request streams for a worker. */
  dispatchAhead: number;
  /** With shards: the lowest virtual time the job's shard may start it at (VirtualTimeFloor); absent: none. */
  vtimeFloor?: number;
}

/**
 * `onSent`: called once the submit script is queued on the connection, before its reply: reads started there go
 * out in the same round trip and run after the script (auto-pipelining keeps a connection's order), so they see the
 * new job (the 202's position and ETA).
 */
export interface SubmitHooks {
  onSent?: () => void;
}

/** The fair queue's account of a job: its API key (by fingerprint) when it came with one, else its user. */
export function fairAccountOf(userId: string, apiKeyFingerprint?: string): string {
  return apiKeyFingerprint !== undefined ? `key:${apiKeyFingerprint}` : `user:${userId}`;
}

/**
 * Accepts a job (JOB_SUBMIT), within the per-key cap when one applies. The key's slot is reserved first and
 * atomically (ZADD + ZCARD in one MULTI: concurrent submits of one key are serialized there, so the cap is never
 * exceeded); a reservation the submit does not turn into a job is taken back. At the cap, the key's ended jobs are
 * dropped from its set first (the set heals itself even where a job's end did not release its slot).
 */
export async function runSubmitScript(
  redis: RedisClient,
  keys: StreamKeys,
  a: SubmitScriptArgs,
  hooks: SubmitHooks = {},
): Promise<SubmitOutcome> {
  if (!a.keyActive) return submit(redis, keys, a, hooks);
  const { key, max } = a.keyActive;
  let active = await reserve(redis, key, a.jobId);
  if (active > max) active = await releaseEnded(redis, keys, key, a.jobId);
  if (active > max) {
    await redis.zrem(key, a.jobId);
    // A repeated request (same Idempotency-Key) still finds its job: the script answers duplicates before it
    // checks a limit, and with a limit of 0 it accepts nothing else.
    const repeated = await submit(redis, keys, { ...a, maxActive: 0, keyActive: undefined });
    return repeated.kind === 'duplicate' ? repeated : { kind: 'key-limit', active: active - 1 };
  }
  let outcome: SubmitOutcome | undefined;
  try {
    outcome = await submit(redis, keys, a, hooks);
    return outcome;
  } finally {
    if (outcome?.kind !== 'accepted') await redis.zrem(key, a.jobId).catch(() => undefined);
  }
}

/** Takes a slot in the key's set; returns how many it holds now, this one included. */
async function reserve(redis: RedisClient, key: string, jobId: string): Promise<number> {
  const replies = (await redis.multi().zadd(key, Date.now(), jobId).zcard(key).exec()) ?? [];
  const [error, count] = replies[1] ?? [new Error('no reply')];
  if (error) throw error;
  return Number(count);
}

/**
 * Drops the key's jobs that have ended (their view says so) and reservations that never became a job; returns how
 * many remain. One pipelined read of the members' statuses.
 */
async function releaseEnded(redis: RedisClient, keys: StreamKeys, key: string, ownJobId: string): Promise<number> {
  const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
  const members: { jobId: string; reservedAt: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] !== ownJobId) members.push({ jobId: flat[i], reservedAt: Number(flat[i + 1]) });
  }
  const read = redis.pipeline();
  for (const { jobId } of members) read.hget(keys.view(jobId), 'status');
  const statuses = ((await read.exec()) ?? []).map(([err, value]) => (err ? undefined : (value as string | null)));
  const cutoff = Date.now() - RESERVATION_GRACE_MS;
  const ended = members
    .filter(({ reservedAt }, i) => {
      const status = statuses[i];
      if (status === undefined) return false; // unread: counts, to be safe
      return status === null ? reservedAt < cutoff : TERMINAL_STATUSES.has(status as JobStatus);
    })
    .map(({ jobId }) => jobId);
  if (ended.length > 0) await redis.zrem(key, ...ended);
  return members.length + 1 - ended.length;
}

async function submit(
  redis: RedisClient,
  keys: StreamKeys,
  a: SubmitScriptArgs,
  hooks: SubmitHooks = {},
): Promise<SubmitOutcome> {
  // The job's first view, from the one reducer; the script adds the ticket it draws.
  const { ticket: _ticket, ...viewFields } = viewToHash(
    reduceJobView(undefined, JSON.parse(a.envelopeJson) as AnyJobEnvelope),
  );
  // Carried through every later view write (the reducer keeps fields it does not know).
  if (a.keyActive) viewFields[KEY_ACTIVE_SET_FIELD] = a.keyActive.key;
  const sent = JOB_SUBMIT.run(
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
      a.account,
      keys.prefix,
      String(a.dispatchAhead),
      String(a.vtimeFloor ?? -1),
      ...Object.entries(viewFields).flat(),
    ],
  );
  hooks.onSent?.();
  const reply = (await sent) as string[];
  const [kind, first = '', second = '', third] = reply;
  if (kind === 'accepted')
    return { kind, jobId: first, ticket: Number(second), ...(third !== undefined ? { vtime: Number(third) } : {}) };
  if (kind === 'limit') return { kind, active: Number(first) };
  const separator = first.lastIndexOf('|');
  return { kind: 'duplicate', jobId: first.slice(0, separator), fingerprint: first.slice(separator + 1) };
}
