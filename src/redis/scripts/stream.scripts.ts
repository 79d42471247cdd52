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
 * Helpers of the ShardArbiter's scripts, over the streams a consumer reads in one shard (KEYS, one slot):
 * `nextUnread` is the next entry of a stream that no consumer of the group has read yet (after the group's
 * last-delivered-id) as {id, tag, value}: its fair-queue start tag as written ('' without one) and as a number
 * (-inf without one, so it goes first); nil when there is none. `entryHead` is the same for a known entry;
 * `shardHeads` is `nextUnread` of every stream in KEYS; `lowest` the lowest of them, with its index.
 */
const NEXT_UNREAD_LUA = `
-- As the consumer reads a tag: anything but a finite number (none, 'inf', 'nan') goes first.
local function tagValue(text)
  local value = tonumber(text)
  if not value or value ~= value or value == math.huge or value == -math.huge then return -math.huge end
  return value
end

local function entryHead(entry)
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'tag' then return {id = entry[1], tag = fields[j + 1], value = tagValue(fields[j + 1])} end
  end
  return {id = entry[1], tag = '', value = -math.huge}
end

local function nextUnread(key, group)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
  if not ok then return nil end
  for _, g in ipairs(groups) do
    local f = {}
    for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
    if f['name'] == group then
      if f['lag'] == 0 then return nil end
      local entry = redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', 1)[1]
      if not entry then return nil end
      return entryHead(entry)
    end
  end
  return nil
end

local function shardHeads(group)
  local heads = {}
  for i, key in ipairs(KEYS) do heads[i] = nextUnread(key, group) end
  return heads
end

local function lowest(heads)
  local best, index = nil, 0
  for i = 1, #KEYS do
    if heads[i] and (not best or heads[i].value < best.value) then best, index = heads[i], i end
  end
  return best, index
end
`;

/**
 * The shard's next unread entry with the lowest start tag, for the group ARGV[1]: {index in KEYS from 1, tag}
 * (tag '' when it has none), or false when every entry has been read. Read-only.
 */
export const STREAM_PEEK_NEXT = new LuaScript(
  'stream-peek-next',
  `${NEXT_UNREAD_LUA}
local heads = shardHeads(ARGV[1])
local best, index = lowest(heads)
if not best then return false end
return {index, best.tag}
`,
  { allowOom: true },
);

/**
 * Reads the shard's next unread entry with the lowest start tag for group ARGV[1] as consumer ARGV[2]
 * (XREADGROUP … COUNT 1, no BLOCK), but only if its tag is at most ARGV[3] (the lowest any shard offered when the
 * ShardArbiter chose; '-inf' for an untagged one): a peer that read the chosen entry meanwhile leaves a later one,
 * which may no longer be the lowest. Returns {read (1/0), its index in KEYS, id, fields, next index, next tag}: the
 * entry read (index 0 and id '' when none was), then the shard's next unread entry after it (index 0 when there is
 * none), so the arbiter need not look again.
 */
export const STREAM_READ_NEXT_UP_TO = new LuaScript(
  'stream-read-next-up-to',
  `${NEXT_UNREAD_LUA}
local heads = shardHeads(ARGV[1])
local best, index = lowest(heads)
if not best then return {0, 0, '', {}, 0, ''} end
if best.value > tagValue(ARGV[3]) then return {0, 0, '', {}, index, best.tag} end
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[index], '>')
local entry = read and read[1] and read[1][2][1]
if not entry then return {0, 0, '', {}, 0, ''} end
local after = redis.call('XRANGE', KEYS[index], '(' .. entry[1], '+', 'COUNT', 1)[1]
heads[index] = after and entryHead(after) or nil
local nextBest, nextIndex = lowest(heads)
return {1, index, entry[1], entry[2] or {}, nextIndex, nextBest and nextBest.tag or ''}
`,
  { allowOom: true },
);
