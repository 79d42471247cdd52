import type Redis from 'ioredis';
import { LuaScript } from '../../../common/lua-script';
import type { StreamKeys } from '../../../streams/stream-keys';

/**
 * Accepts a job atomically: idempotency check, per-user active limit, ticket, request append, queue entry and
 * the accepted-job record (read-your-writes) — all or nothing. The ticket goes into the envelope by replacing a
 * placeholder, because the ticket only exists inside the script and re-encoding JSON with cjson would change it.
 */
const SUBMIT = new LuaScript(`
-- An idempotency TTL of 0: the caller gave no key, so no later request can repeat this one (nothing to keep).
local keyed = ARGV[4] ~= '0'
if keyed then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'duplicate', existing} end
end
local active = redis.call('SCARD', KEYS[2])
if active >= tonumber(ARGV[2]) then return {'limit', tostring(active)} end
local ticket = redis.call('INCR', KEYS[3])
local body = string.gsub(ARGV[3], '"__TICKET__"', tostring(ticket), 1)
local entryId = redis.call('XADD', KEYS[6], '*', 'e', body)
local score = tonumber(ticket)
if ARGV[9] == '1' then score = score - 1e12 end
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[5], 'id', ARGV[1], 'workflow', ARGV[6], 'userId', ARGV[7], 'createdAt', ARGV[8],
  'ticket', tostring(ticket), 'entryId', entryId, 'status', 'queued')
redis.call('EXPIRE', KEYS[5], ARGV[5])
if keyed then redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[10], 'EX', ARGV[4]) end
return {'accepted', ARGV[1], tostring(ticket), entryId}
`);

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
  const reply = (await SUBMIT.run(
    redis,
    [a.idempotencyKey, keys.userActive(a.userId), keys.ticketCounter, keys.queue, keys.record(a.jobId), a.stream],
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
    ],
  )) as string[];
  const [kind, first = '', second = '', third = ''] = reply;
  if (kind === 'accepted') return { kind, jobId: first, ticket: Number(second), entryId: third };
  if (kind === 'limit') return { kind, active: Number(first) };
  const separator = first.lastIndexOf('|');
  return { kind: 'duplicate', jobId: first.slice(0, separator), fingerprint: first.slice(separator + 1) };
}
