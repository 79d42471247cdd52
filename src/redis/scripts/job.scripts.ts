import { LuaScript } from '../lua-script';

/**
 * Accepts a job atomically: idempotency check, per-user active limit, ticket, request append, queue entry and
 * the accepted-job record (read-your-writes) — all or nothing. The ticket goes into the envelope by replacing a
 * placeholder, because the ticket only exists inside the script and re-encoding JSON with cjson would change it.
 */
export const JOB_SUBMIT = new LuaScript(
  'job-submit',
  `
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
`,
);

/** Writes the whole view only if nobody changed it since it was read (rev), so writers never lose an update. */
export const JOB_VIEW_CAS_WRITE = new LuaScript(
  'job-view-cas-write',
  `
local rev = redis.call('HGET', KEYS[1], 'rev') or ''
if rev ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
`,
);

/** Exponential moving average of run time (α = 0.2): recent jobs count most, one outlier does not dominate. */
export const RUN_STATS_EMA = new LuaScript(
  'run-stats-ema',
  `
local avg = tonumber(redis.call('HGET', KEYS[1], 'avgRunMs'))
local x = tonumber(ARGV[1])
if avg == nil then avg = x else avg = avg * 0.8 + x * 0.2 end
redis.call('HSET', KEYS[1], 'avgRunMs', tostring(avg))
redis.call('HINCRBY', KEYS[1], 'completed', 1)
return tostring(avg)
`,
);
