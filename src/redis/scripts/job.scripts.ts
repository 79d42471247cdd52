import { LuaScript } from '../lua-script';
import { leaseReleaseLua, leaseTakeLua } from './lease.scripts';

/**
 * Lua: the fair queue's dispatcher (docs/fair-queue.md). Queued jobs wait in the queue set (`queue:tickets`, scored
 * by their fair start tag: ZRANK is the job's place in the order jobs will start); those not yet dispatched also wait
 * in `queue:pending` with their request held in `queue:request:<id>`. While fewer than `ahead` dispatched jobs wait in
 * the request streams for a worker, the pending job with the lowest tag is appended there (and the virtual time moves
 * to its tag). Key names are built from the prefix (`pfx`): every one shares the prefix of the other keys the calling
 * script names. Defines appendHeld(pfx, id) → the held request's fields (false when none), appended to its stream
 * with its ticket (held as 'n'; a request held by release 55a6019 or before has it inside its envelope instead)
 * and named in the job's view and timeline; and dispatch(pfx, ahead) → how many it dispatched.
 */
const DISPATCH_LUA = `
local function appendHeld(pfx, id)
  local held = pfx .. 'queue:request:' .. id
  local r = redis.call('HMGET', held, 'e', 's', 'a', 'f', 't', 'c', 'n')
  redis.call('DEL', held)
  if not r[1] then return false end
  local entry
  if r[7] then
    entry = redis.call('XADD', pfx .. r[2], '*', 'e', r[1], 'ticket', r[7], 'projected', '1', 'tag', r[5])
  else
    entry = redis.call('XADD', pfx .. r[2], '*', 'e', r[1], 'projected', '1', 'tag', r[5])
  end
  redis.call('HSET', pfx .. 'jobs:view:' .. id, 'requestEntryId', entry)
  -- The timeline's lifetime is set when the job ends (with its view's).
  redis.call('ZADD', pfx .. 'jobs:timeline:' .. id, string.match(entry, '^(%d+)'), r[2] .. '|' .. entry)
  return r
end

local function dispatch(pfx, ahead)
  local queue, pending = pfx .. 'queue:tickets', pfx .. 'queue:pending'
  -- Nothing held back (the usual case while the workers keep up): one command, not three.
  local held = redis.call('ZCARD', pending)
  if held == 0 then return 0 end
  local waiting = redis.call('ZCARD', queue) - held
  local moved = 0
  while waiting < ahead do
    local top = redis.call('ZPOPMIN', pending)
    local id = top[1]
    if not id then break end
    local r = appendHeld(pfx, id)
    if r then
      redis.call('SET', pfx .. 'queue:vtime', r[5])
      -- Finish tags at or behind the virtual time say nothing any more (a new job starts at the virtual time).
      redis.call('ZREMRANGEBYSCORE', pfx .. 'queue:finish', '-inf', r[5])
      waiting = waiting + 1
      moved = moved + 1
    end
  end
  return moved
end
`;

/** A job's queue score: its fair start tag, then its ticket (submit order) among equal tags. */
const FAIR_SCORE_LUA = `
local function fairScore(tag, ticket) return tag * 1e7 + (ticket % 1e7) end
`;

/**
 * Accepts a job atomically: idempotency check, per-user active limit, ticket, the job's view (readable at once:
 * read-your-writes) and its place in the fair queue, then dispatches what the streams have room for — all or
 * nothing. Fair order (start-time fair queuing): the job's start tag is max(virtual time, its account's last finish
 * tag), its finish tag start + cost (4 for the normal tier, 1 for priority: priority weighs ×4, it does not
 * preempt). An account (an API key, else a user) with a backlog thus takes turns with one that has a single job
 * instead of holding it behind the whole backlog; within an account jobs keep submit order. The ticket only exists
 * inside the script, so it is appended as the request entry's own `ticket` field next to the envelope (held as 'n'
 * with a request that waits for its turn); readers merge it (envelope.codec.ts).
 * KEYS: idempotency key, user's active set, ticket counter, queue, the job's request stream, view, timeline.
 * ARGV: jobId, max active, envelope, idempotency TTL, retention TTL, workflow, user, created at, priority (1/0),
 * fingerprint, the request stream's name (without prefix), the account, the prefix, dispatch-ahead, the virtual
 * time floor (-1 with one shard: none), view fields…. Accepted: the job id, its ticket and, with shards, the shard's
 * virtual time after it (what the caller's floor learns). A dispatched request entry carries its start tag (`tag`): a gpu process
 * reading several shards starts the lowest first.
 */
export const JOB_SUBMIT = new LuaScript(
  'job-submit',
  `${DISPATCH_LUA}${FAIR_SCORE_LUA}
-- An idempotency TTL of 0: the caller gave no key, so no later request can repeat this one (nothing to keep).
local keyed = ARGV[4] ~= '0'
if keyed then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'duplicate', existing} end
end
local active = redis.call('SCARD', KEYS[2])
if active >= tonumber(ARGV[2]) then return {'limit', tostring(active)} end
local ticket = redis.call('INCR', KEYS[3])
local body = ARGV[3]
local pfx = ARGV[13]
local cost = 4
if ARGV[9] == '1' then cost = 1 end
local vtime = tonumber(redis.call('GET', pfx .. 'queue:vtime') or '0')
-- With shards, the caller's floor (the highest virtual time it saw in any shard) brings a shard that has been idle
-- up to the others, so start tags compare across shards (docs/fair-queue.md#shards).
local sharded = ARGV[15] ~= '-1'
local floor = tonumber(ARGV[15])
if sharded and floor > vtime then
  vtime = floor
  redis.call('SET', pfx .. 'queue:vtime', ARGV[15])
  redis.call('ZREMRANGEBYSCORE', pfx .. 'queue:finish', '-inf', ARGV[15])
end
local start = math.max(vtime, tonumber(redis.call('ZSCORE', pfx .. 'queue:finish', ARGV[12]) or '0'))
local finish = tostring(start + cost)
redis.call('ZADD', pfx .. 'queue:finish', finish, ARGV[12])
local score = fairScore(start, ticket)
-- The priority tier's queued jobs, for the per-tier metrics (a job that leaves the queue leaves this set too).
if ARGV[9] == '1' then redis.call('ZADD', pfx .. 'queue:priority', score, ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[1])
if keyed then redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[10], 'EX', ARGV[4]) end
if redis.call('ZCARD', pfx .. 'queue:pending') == 0 and redis.call('ZCARD', KEYS[4]) < tonumber(ARGV[14]) then
  -- Nobody waits for a turn and the streams have room: the job is dispatched at once, its request never held
  -- (what DISPATCH_LUA would do with it, without the round through queue:pending).
  redis.call('ZADD', KEYS[4], score, ARGV[1])
  local entry = redis.call('XADD', KEYS[5], '*', 'e', body, 'ticket', tostring(ticket), 'projected', '1',
    'tag', tostring(start))
  -- The job's view, readable at once (the projector skips its request entry): the reducer's fields, the ticket
  -- and the request's entry id, in one HSET.
  redis.call('HSET', KEYS[6], 'rev', '1', 'ticket', tostring(ticket), 'requestEntryId', entry, unpack(ARGV, 16))
  redis.call('ZADD', KEYS[7], string.match(entry, '^(%d+)'), ARGV[11] .. '|' .. entry)
  redis.call('SET', pfx .. 'queue:vtime', tostring(start))
  redis.call('ZREMRANGEBYSCORE', pfx .. 'queue:finish', '-inf', tostring(start))
  return {'accepted', ARGV[1], tostring(ticket), tostring(start)}
end
-- The job's view, readable at once: the reducer's fields and the ticket; the request's entry id is added when it
-- is dispatched.
redis.call('HSET', KEYS[6], 'rev', '1', 'ticket', tostring(ticket), unpack(ARGV, 16))
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('ZADD', pfx .. 'queue:pending', score, ARGV[1])
redis.call('HSET', pfx .. 'queue:request:' .. ARGV[1], 'e', body, 's', ARGV[11], 'a', ARGV[12], 'f', finish,
  't', tostring(start), 'c', tostring(cost), 'n', tostring(ticket))
dispatch(pfx, tonumber(ARGV[14]))
if not sharded then return {'accepted', ARGV[1], tostring(ticket)} end
return {'accepted', ARGV[1], tostring(ticket), redis.call('GET', pfx .. 'queue:vtime') or '0'}
`,
);

/** Tops the request streams up from the fair queue (a worker's periodic safety net; see DISPATCH_LUA). ARGV: prefix, ahead. */
export const JOB_DISPATCH = new LuaScript(
  'job-dispatch',
  `${DISPATCH_LUA}
return dispatch(ARGV[1], tonumber(ARGV[2]))
`,
  { allowOom: true },
);

/**
 * Cancels a queued job: sets the cancel flag and takes the job out of the queue (1: it was queued, so it is
 * cancelled now; 0: a worker has it — it hears the cancel). A job never dispatched has its request appended now all
 * the same, so the event log stays whole (the worker that meets it finds it cancelled and drops it), and its
 * account gets its turn back when it was its last queued job. A dispatch follows: the job's place in the streams is
 * free.
 * KEYS: cancel flag, queue. ARGV: by, flag TTL (s), jobId, prefix, dispatch-ahead, retention TTL.
 */
export const JOB_CANCEL_QUEUED = new LuaScript(
  'job-cancel-queued',
  `${DISPATCH_LUA}
local pfx, id = ARGV[4], ARGV[3]
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local removed = redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', pfx .. 'queue:priority', id)
if redis.call('ZREM', pfx .. 'queue:pending', id) == 1 then
  local r = appendHeld(pfx, id)
  if r then
    redis.call('EXPIRE', pfx .. 'jobs:timeline:' .. id, ARGV[6])
    if tonumber(redis.call('ZSCORE', pfx .. 'queue:finish', r[3])) == tonumber(r[4]) then
      redis.call('ZADD', pfx .. 'queue:finish', tonumber(r[4]) - tonumber(r[6]), r[3])
    end
  end
end
dispatch(pfx, tonumber(ARGV[5]))
return removed
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
  { allowOom: true },
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
  local fields = {'avgRunMs', 'perWork', 'k:' .. ${costKey}, 'w:' .. ${workflow}}
  local values = {x, perWork, x, perWork}
  local avgs = redis.call('HMGET', ${key}, unpack(fields))
  local set = {}
  for i = 1, 4 do
    local avg = tonumber(avgs[i])
    if avg == nil then avg = values[i] else avg = avg * 0.8 + values[i] * 0.2 end
    set[#set + 1] = fields[i]
    set[#set + 1] = tostring(avg)
  end
  redis.call('HSET', ${key}, unpack(set))
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
 * (job-view.reducer.ts), computed by the caller against the view at rev ARGV[1]; only the fields that changed are
 * written (and the ones the reducer dropped deleted). Another writer in between makes this answer
 * { 0, <the current view> } and the caller reduces again.
 * A job that leaves the queue joins the in-flight set until it ends — with the queue, what an ETA counts ahead of
 * it. Its score says where it is: −(ms it was taken) while it waits on an instance (taken, or retried), +(ms it
 * started) while it draws. The worker's claim already moved it out of the queue (JobLedger.claimForRun), so
 * `job.accepted` moves nothing; `job.started` re-scores it.
 * A worker's run of the job that ends with this event ends here too: its placement goes and its run lease (taken
 * by the claim for request entry ARGV[13]) is released.
 * KEYS: stream, view, timeline, queue, user's active set, last progress, run stats, in-flight set, run lease,
 * placement, and the API key's active set when the job counts in one.
 * ARGV: rev, envelope, jobId, timeline member prefix (the stream's name), view TTL (0: none), timeline TTL,
 * taken (0: no move, 2: started drawing, 3: to be retried), finished (1: the job just ended), run
 * ms to learn from ('' none), the run's cost class, workflow and work, the request entry whose run ends ('' none),
 * the number n of fields to delete, those n fields, then the changed fields and values.
 */
export const JOB_APPEND_APPLIED = new LuaScript(
  'job-append-applied',
  `
local rev = redis.call('HGET', KEYS[2], 'rev') or ''
if rev ~= ARGV[1] then return {0, redis.call('HGETALL', KEYS[2])} end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2], 'projected', '1')
local dropped = tonumber(ARGV[14])
if dropped > 0 then redis.call('HDEL', KEYS[2], unpack(ARGV, 15, 14 + dropped)) end
redis.call('HSET', KEYS[2], 'rev', tostring((tonumber(rev) or 0) + 1), unpack(ARGV, 15 + dropped))
if ARGV[5] ~= '0' then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
redis.call('ZADD', KEYS[3], string.match(id, '^(%d+)'), ARGV[4] .. '|' .. id)
if ARGV[8] == '1' then
  -- The timeline lives as long as the view from the job's end on.
  redis.call('EXPIRE', KEYS[3], ARGV[6])
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('ZREM', KEYS[8], ARGV[3])
  redis.call('SREM', KEYS[5], ARGV[3])
  redis.call('DEL', KEYS[6])
  if KEYS[11] then redis.call('ZREM', KEYS[11], ARGV[3]) end
elseif ARGV[7] ~= '0' then
  local ms = tonumber(string.match(id, '^(%d+)'))
  if ARGV[7] == '2' then redis.call('ZADD', KEYS[8], ms, ARGV[3]) else redis.call('ZADD', KEYS[8], -ms, ARGV[3]) end
end
if ARGV[9] ~= '' then${runStatsLua('KEYS[7]', 'ARGV[9]', 'ARGV[10]', 'ARGV[11]', 'ARGV[12]')}end
if ARGV[13] ~= '' then
  redis.call('DEL', KEYS[10])
  local _ = ${leaseReleaseLua('KEYS[9]', 'ARGV[13]')}
end
return {1, id}
`,
);

/**
 * A worker takes a job's request entry, in one step: reads the view (the worker's copy for its transitions) and,
 * unless the job already ended, moves it out of the queue into the in-flight set (scored −now: taken, waiting on an
 * instance), reads the cancel flag, takes the run lease for this request entry (another entry of the same job
 * stands aside) and reads where an earlier attempt placed the prompt.
 * The job's place in the request streams is free: the fair queue dispatches the next job into it (DISPATCH_LUA).
 * KEYS: view, queue, in-flight set, cancel flag, run lease, placement.
 * ARGV: jobId, now (ms), request entry, run lease ms, prefix, dispatch-ahead, then the terminal statuses.
 * Returns {'finished'} | {'cancelled', by} | {'duplicate', holder} | {'run', view fields…, placement or false}.
 */
export const JOB_CLAIM = new LuaScript(
  'job-claim',
  `${DISPATCH_LUA}
local view = redis.call('HGETALL', KEYS[1])
local status = nil
for i = 1, #view, 2 do if view[i] == 'status' then status = view[i + 1] end end
-- Only the priority tier's requests (in their own stream) are in its set.
local priority = string.sub(ARGV[3], 1, 23) == 'jobs:requests:priority|'
for i = 7, #ARGV do
  if status == ARGV[i] then
    redis.call('ZREM', KEYS[2], ARGV[1])
    if priority then redis.call('ZREM', ARGV[5] .. 'queue:priority', ARGV[1]) end
    redis.call('ZREM', KEYS[3], ARGV[1])
    dispatch(ARGV[5], tonumber(ARGV[6]))
    return {'finished'}
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
if priority then redis.call('ZREM', ARGV[5] .. 'queue:priority', ARGV[1]) end
dispatch(ARGV[5], tonumber(ARGV[6]))
redis.call('ZADD', KEYS[3], 'NX', -tonumber(ARGV[2]), ARGV[1])
local cancelledBy = redis.call('GET', KEYS[4])
if cancelledBy then return {'cancelled', cancelledBy} end
local function taken()${leaseTakeLua('KEYS[5]', 'ARGV[3]', 'ARGV[4]')}return false
end
local holder = taken()
if holder then return {'duplicate', holder} end
return {'run', redis.call('GET', KEYS[6]) or false, view}
`,
  { allowOom: true },
);
