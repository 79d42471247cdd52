import { LuaScript } from '../lua-script';

/**
 * Refreshes the idle time of entries this consumer still owns (XCLAIM … JUSTID, which does not bump the
 * delivery counter) and reports the ones another consumer has taken meanwhile. Checking the owner first
 * matters: a plain XCLAIM would steal an entry back from a sweeper that rightly took it while we were
 * stalled, and both would then run it.
 */
export const CONSUMER_HEARTBEAT = new LuaScript(
  'consumer-heartbeat',
  `
local lost = {}
for i = 1, #ARGV - 2 do
  local id = ARGV[i + 2]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] ~= nil and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  else
    table.insert(lost, id)
  end
end
return lost
`,
  { allowOom: true },
);

/**
 * Takes an entry this consumer still owns once more, as a new delivery: XCLAIM without JUSTID bumps the
 * delivery counter (so the attempt count survives a crash) and returns the entry's fields. Owner-checked like
 * the heartbeat, for the same reason. Returns false when another consumer has it, {-1} when the entry was
 * deleted from the stream meanwhile, else {deliveries, fields}.
 */
export const CONSUMER_REDELIVER_OWN = new LuaScript(
  'consumer-redeliver-own',
  `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] == nil or p[1][2] ~= ARGV[2] then return false end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
if claimed[1] == nil or claimed[1][2] == nil then return {-1} end
return {p[1][4] + 1, claimed[1][2]}
`,
  { allowOom: true },
);

/**
 * Hands an entry this consumer owns to another consumer of the group and wakes it: owner-checked like the
 * heartbeat, then XCLAIM to the new owner (a new delivery: the counter grows, so entries passed around without
 * end still reach MAX_DELIVERIES) and a PUBLISH of `<stream> <id>` on the new owner's channel. ARGV: group, from, to, id, channel.
 * Returns 1 when handed off, 0 when the entry is no longer ours, -1 when it left the stream.
 */
export const CONSUMER_HAND_OFF = new LuaScript(
  'consumer-hand-off',
  `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1)
if p[1] == nil or p[1][2] ~= ARGV[2] then return 0 end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[4])
if claimed[1] == nil or claimed[1][2] == nil then return -1 end
redis.call('PUBLISH', ARGV[5], KEYS[1] .. ' ' .. ARGV[4])
return 1
`,
  { allowOom: true },
);

/** Appends ARGV[2] to KEYS[2] only if the marker KEYS[1] was not set yet (one event of its kind per job). */
export const PUBLISH_ONCE = new LuaScript(
  'publish-once',
  `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
end
return false
`,
);
