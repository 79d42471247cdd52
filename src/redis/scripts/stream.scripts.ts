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

/**
 * The next entry of a stream that no consumer of a group has read yet (after the group's last-delivered-id), as
 * {tag, value}: its fair-queue start tag as written ('' without one) and as a number (-inf without one, so it goes
 * first); nil when there is none.
 */
const NEXT_UNREAD_LUA = `
local function nextUnread(key, group)
  if redis.call('EXISTS', key) == 0 then return nil end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local f = {}
    for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
    if f['name'] == group then
      if f['lag'] == 0 then return nil end
      local entry = redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', 1)[1]
      if not entry then return nil end
      local fields = entry[2]
      for j = 1, #fields, 2 do
        if fields[j] == 'tag' then return {tag = fields[j + 1], value = tonumber(fields[j + 1]) or -math.huge} end
      end
      return {tag = '', value = -math.huge}
    end
  end
  return nil
end
`;

/**
 * Looks at the next unread entry of each stream a consumer reads in one shard (KEYS, one slot) for the group
 * ARGV[1]. Returns {index, tag} of the one with the lowest start tag (index from 1 in KEYS; tag '' when the entry
 * has none, which goes first), or false when every entry has been read. Read-only: a gpu process's ShardArbiter
 * compares the shards with it before it reads one (STREAM_READ_NEXT_UP_TO).
 */
export const STREAM_PEEK_NEXT = new LuaScript(
  'stream-peek-next',
  `${NEXT_UNREAD_LUA}
local best, bestTag, bestValue = false, '', nil
for i, key in ipairs(KEYS) do
  local nxt = nextUnread(key, ARGV[1])
  if nxt and (not best or nxt.value < bestValue) then best, bestTag, bestValue = i, nxt.tag, nxt.value end
end
if not best then return false end
return {best, bestTag}
`,
  { allowOom: true },
);

/**
 * Reads the next unread entry of KEYS[1] for group ARGV[1] as consumer ARGV[2] (XREADGROUP … COUNT 1, no BLOCK)
 * only if its start tag is at most ARGV[3] (the lowest any shard offered when the ShardArbiter looked; '-inf'
 * for an untagged one): a peer that read that entry meanwhile leaves a later one, which may no longer be the
 * lowest. Returns {id, fields}, 'changed' when the next entry's tag is higher, false when there is none.
 */
export const STREAM_READ_NEXT_UP_TO = new LuaScript(
  'stream-read-next-up-to',
  `${NEXT_UNREAD_LUA}
local nxt = nextUnread(KEYS[1], ARGV[1])
if not nxt then return false end
if nxt.value > (tonumber(ARGV[3]) or -math.huge) then return 'changed' end
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if not read or not read[1] or not read[1][2][1] then return false end
return read[1][2][1]
`,
  { allowOom: true },
);
