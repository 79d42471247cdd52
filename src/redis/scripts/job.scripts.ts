import { LuaScript } from '../lua-script';

/**
 * Accepts a job atomically: idempotency check, per-user active limit, ticket, request append, the job's view
 * (readable at once: read-your-writes; it names its request entry) and timeline, queue entry — all or nothing. The ticket goes into the envelope by replacing a
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
local entryId = redis.call('XADD', KEYS[5], '*', 'e', body, 'projected', '1')
-- The job's view, readable at once (the projector skips the entry): the reducer's fields, the ticket and the
-- request's entry id (which entry a re-drive audit or \`cli job\` reads).
redis.call('HSET', KEYS[6], 'rev', '1', 'ticket', tostring(ticket), 'requestEntryId', entryId, unpack(ARGV, 12))
redis.call('ZADD', KEYS[7], string.match(entryId, '^(%d+)'), ARGV[11] .. '|' .. entryId)
redis.call('EXPIRE', KEYS[7], ARGV[5])
local score = tonumber(ticket)
if ARGV[9] == '1' then score = score - 1e12 end
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
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

/**
 * Learns run times (Lua, shared by the scripts that record a finished run): for the job's cost class
 * (`k:<class>`, ms), its workflow (`w:<workflow>`, ms per unit of work), every workflow (`perWork`) and the
 * recent mean of all runs (`avgRunMs`), each an exponential moving average (α 0.2; the first run sets it).
 * Takes the stats key, the run's ms, class, workflow and work as Lua expressions.
 */
function runStatsLua(key: string, ms: string, costKey: string, workflow: string, work: string): string {
  return `
do
  local x = tonumber(${ms})
  local perWork = x / math.max(tonumber(${work}) or 1, 0.001)
  local function ema(field, value)
    local avg = tonumber(redis.call('HGET', ${key}, field))
    if avg == nil then avg = value else avg = avg * 0.8 + value * 0.2 end
    return tostring(avg)
  end
  redis.call('HSET', ${key}, 'avgRunMs', ema('avgRunMs', x), 'perWork', ema('perWork', perWork),
    'k:' .. ${costKey}, ema('k:' .. ${costKey}, x), 'w:' .. ${workflow}, ema('w:' .. ${workflow}, perWork))
  redis.call('HINCRBY', ${key}, 'completed', 1)
end
`;
}

/** Records one finished run's time. KEYS: run stats. ARGV: ms, cost class, workflow, work. */
export const RUN_STATS_EMA = new LuaScript(
  'run-stats-ema',
  `${runStatsLua('KEYS[1]', 'ARGV[1]', 'ARGV[2]', 'ARGV[3]', 'ARGV[4]')}
return 1
`,
);

/**
 * Appends a job event and applies it to the job's view in one step, so the new state is readable the moment the
 * event exists (the projector skips entries marked `projected`). The view fields come from the one reducer
 * (job-view.reducer.ts), computed by the caller against the view at rev ARGV[1]; another writer in between makes
 * this answer { 0, <the current view> } and the caller reduces again.
 * A job that leaves the queue joins the in-flight set until it ends — with the queue, what an ETA counts ahead of
 * it. Its score says where it is: −(ms it was taken) while it waits on an instance (taken, or retried), +(ms it
 * started) while it draws.
 * KEYS: stream, view, timeline, queue, user's active set, last progress, run stats, in-flight set.
 * ARGV: rev, envelope, jobId, timeline member prefix (the stream's name), view TTL (0: none), timeline TTL,
 * taken (1: placed on an instance, 2: started drawing, 3: to be retried), finished (1: the job just ended), run
 * ms to learn from ('' none), the
 * run's cost class, workflow and work, fields…
 */
export const JOB_APPEND_APPLIED = new LuaScript(
  'job-append-applied',
  `
local rev = redis.call('HGET', KEYS[2], 'rev') or ''
if rev ~= ARGV[1] then return {0, redis.call('HGETALL', KEYS[2])} end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2], 'projected', '1')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'rev', tostring((tonumber(rev) or 0) + 1), unpack(ARGV, 13))
if ARGV[5] ~= '0' then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
redis.call('ZADD', KEYS[3], string.match(id, '^(%d+)'), ARGV[4] .. '|' .. id)
redis.call('EXPIRE', KEYS[3], ARGV[6])
if ARGV[8] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('ZREM', KEYS[8], ARGV[3])
  redis.call('SREM', KEYS[5], ARGV[3])
  redis.call('DEL', KEYS[6])
elseif ARGV[7] ~= '0' then
  local ms = tonumber(string.match(id, '^(%d+)'))
  redis.call('ZREM', KEYS[4], ARGV[3])
  if ARGV[7] == '2' then redis.call('ZADD', KEYS[8], ms, ARGV[3])
  elseif ARGV[7] == '3' then redis.call('ZADD', KEYS[8], -ms, ARGV[3])
  else redis.call('ZADD', KEYS[8], 'NX', -ms, ARGV[3]) end
end
if ARGV[9] ~= '' then${runStatsLua('KEYS[7]', 'ARGV[9]', 'ARGV[10]', 'ARGV[11]', 'ARGV[12]')}end
return {1, id}
`,
);
