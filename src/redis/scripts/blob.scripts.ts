import { LuaScript } from '../lua-script';

/**
 * The blob index (src/blobs/blob-lifetimes.repository.ts explains the lifecycle). Times come from Redis' own clock,
 * so every process agrees on when a hold expires.
 */

/**
 * Adds a hold of ARGV[3] ms. Refused while the same content is being deleted (-1: retry shortly) and, for new
 * content, when the byte cap would be passed (-2). 0: mustExist was asked and the blob is not stored.
 * Returns { 1, isNew, dueMs, stored }. The bytes key (Redis backend; absent otherwise) expires with the latest hold.
 * ARGV[7] (Redis backend): the bytes, stored in that key when it does not hold them yet (stored = 1), so a put is
 * one round trip.
 */
export const BLOB_ACQUIRE = new LuaScript(
  'blob-acquire',
  `
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[5]) == 1 then return {-1} end
local known = redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1
if ARGV[6] == '1' and not known then return {0} end
if not known then
  local max = tonumber(ARGV[5])
  local total = tonumber(redis.call('GET', KEYS[4]) or '0')
  if max > 0 and total + tonumber(ARGV[4]) > max then return {-2, total} end
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  redis.call('INCRBY', KEYS[4], ARGV[4])
end
local expires = now + tonumber(ARGV[3])
local current = redis.call('ZSCORE', KEYS[1], ARGV[2])
if (not current) or tonumber(current) < expires then redis.call('ZADD', KEYS[1], expires, ARGV[2]) end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], top[2])
redis.call('PEXPIREAT', KEYS[6], top[2])
local stored = 0
if ARGV[7] then
  if (not known) or redis.call('EXISTS', KEYS[6]) == 0 then redis.call('SET', KEYS[6], ARGV[7], 'PXAT', top[2]) end
  stored = 1
end
return {1, known and 0 or 1, top[2], stored}
`,
);

/**
 * Drops a hold and every expired one. With holds left: { 0 } (the bytes key follows the latest). With none: { 1 },
 * and the blob is due now — the sweeper deletes the bytes, so a caller never waits on the backend (Redis-held
 * bytes expire right here). { 2 }: gone.
 */
export const BLOB_RELEASE = new LuaScript(
  'blob-release',
  `
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[1] then
  redis.call('ZADD', KEYS[2], top[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[4], top[2])
  return {0}
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {2}
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIREAT', KEYS[4], now)
return {1}
`,
  { allowOom: true },
);

/**
 * The sweeper's claim on deleting a due blob: only when no unexpired hold is left and nobody else is deleting it.
 * Sets the marker (token, ARGV[3] ms, longer than any delete can take) that makes puts of this content wait.
 * 1: delete it; 0: held again (due moved); 2: not stored; 3: another process is deleting it.
 */
export const BLOB_CLAIM_DELETE = new LuaScript(
  'blob-claim-delete',
  `
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[1] then
  redis.call('ZADD', KEYS[2], top[2], ARGV[1])
  return 0
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 2
end
if redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[3]) == false then return 3 end
return 1
`,
  { allowOom: true },
);

/** After the bytes are deleted: the blob leaves the index and its size the total — only under our own marker. */
export const BLOB_FORGET = new LuaScript(
  'blob-forget',
  `
if redis.call('GET', KEYS[4]) ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[4])
local size = redis.call('HGET', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('DECRBY', KEYS[5], size)
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`,
  { allowOom: true },
);

/** Stores the bytes expiring with the latest hold, read in the same script (no lost update against a release). */
export const BLOB_BYTES_WRITE = new LuaScript(
  'blob-bytes-write',
  `
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if not top[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', top[2])
return 1
`,
);
