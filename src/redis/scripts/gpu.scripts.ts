import { LuaScript } from '../lua-script';

/**
 * Lua: takes the slot on lease set KEYS[i] (member ARGV[4], for ttl ms from now), dropping its expired leases
 * first. Lease sets not taken keep theirs until they are (ZCOUNT from now on ignores them meanwhile) or expire.
 */
function takeSlotLua(i: string, now: string, ttl: string): string {
  return `
redis.call('ZREMRANGEBYSCORE', KEYS[${i}], '-inf', ${now})
redis.call('ZADD', KEYS[${i}], ${now} + ${ttl}, ARGV[4])
redis.call('PEXPIRE', KEYS[${i}], ${ttl} * 2)
`;
}

/**
 * Leases in Redis so several gpu replicas never put more than the pipeline depth on one ComfyUI instance.
 * One sorted set per instance: member = lease id, score = expiry (ms). Acquire takes a slot on the least-loaded
 * candidate (the first idle one in the caller's order, without looking further), atomically.
 */
export const INSTANCE_SLOT_ACQUIRE = new LuaScript(
  'instance-slot-acquire',
  `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local depth = tonumber(ARGV[3])
local force = ARGV[5] == '1'
local best, bestCount = 0, depth
for i, key in ipairs(KEYS) do
  local count = redis.call('ZCOUNT', key, '(' .. now, '+inf')
  if count < bestCount then best = i; bestCount = count end
  if count == 0 then break end
end
if best == 0 and force then best = 1 end
if best == 0 then return 0 end
${takeSlotLua('best', 'now', 'ttl')}
return best
`,
  { allowOom: true },
);

/**
 * The slot take with model affinity, work-conserving (see docs/operations.md, mixed pools). KEYS: the candidates'
 * lease sets, then the hash of the model set each instance was last given (instance id → model key). ARGV: now,
 * ttl, depth, lease id, the job's model key, the model keys other jobs waiting in this process want (newline
 * separated), then the candidates' instance ids. In order of preference:
 *   1. an idle instance (nothing leased): one already on this model (or on none yet) first, else any idle one
 *      that no other waiting job wants as it is (that job takes it at once) — an idle GPU never waits while a
 *      job does;
 *   2. a busy instance on this model with a free slot (the least loaded);
 *   3. an instance on this model is full: wait for it (0) rather than queue behind another model's job on a busy
 *      instance — the job starts no later than it would there (that instance goes idle first at the latest, and
 *      rule 1 then takes it) and the GPU does not reload;
 *   4. else the least-loaded instance with a free slot.
 * Returns { index (0: none), the instance's previous model key or false }.
 */
export const INSTANCE_SLOT_ACQUIRE_AFFINE = new LuaScript(
  'instance-slot-acquire-affine',
  `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local depth = tonumber(ARGV[3])
local model = ARGV[5]
local n = #KEYS - 1
local tails = KEYS[#KEYS]
local wanted = {}
for key in string.gmatch(ARGV[6], '[^\\n]+') do wanted[key] = true end
local counts = {}
local tail = redis.call('HMGET', tails, unpack(ARGV, 7, 6 + n))
for i = 1, n do
  counts[i] = redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf')
end
local pick = 0
for i = 1, n do
  if counts[i] == 0 and (tail[i] == model or not tail[i]) then pick = i; break end
end
if pick == 0 then
  for i = 1, n do
    if counts[i] == 0 and not (tail[i] and wanted[tail[i]]) then pick = i; break end
  end
end
if pick == 0 then
  local best = depth
  for i = 1, n do
    if tail[i] == model and counts[i] < best then pick = i; best = counts[i] end
  end
end
if pick == 0 then
  for i = 1, n do
    if tail[i] == model then return {0, false} end
  end
  local best = depth
  for i = 1, n do
    if counts[i] < best then pick = i; best = counts[i] end
  end
end
if pick == 0 then return {0, false} end
${takeSlotLua('pick', 'now', 'ttl')}
redis.call('HSET', tails, ARGV[6 + pick], model)
redis.call('PEXPIRE', tails, 86400000)
return {pick, tail[pick]}
`,
  { allowOom: true },
);
