import type Redis from 'ioredis';
import { LuaScript } from '../common/lua-script';
import type { StreamKeys } from '../streams/stream-keys';

/** Redis' own clock (ms): every process agrees on when a hold expires, whatever its local clock says. */
const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Adds a hold of ARGV[3] ms. Refused while the same content is being deleted (-1: retry shortly) and, for new
 * content, when the byte cap would be passed (-2). 0: mustExist was asked and the blob is not stored.
 * Returns { 1, isNew, dueMs }. The bytes key (Redis backend; absent otherwise) expires with the latest hold.
 */
const ACQUIRE = new LuaScript(`
${NOW}
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
return {1, known and 0 or 1, top[2]}
`);

/**
 * Drops a hold and every expired one. With holds left: { 0 } (the bytes key follows the latest). With none: { 1 },
 * and the blob is due now — the sweeper deletes the bytes, so a caller never waits on the backend (Redis-held
 * bytes expire right here). { 2 }: gone.
 */
const RELEASE = new LuaScript(`
${NOW}
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
`);

/**
 * The sweeper's claim on deleting a due blob: only when no unexpired hold is left and nobody else is deleting it.
 * Sets the marker (token, ARGV[3] ms, longer than any delete can take) that makes puts of this content wait.
 * 1: delete it; 0: held again (due moved); 2: not stored; 3: another process is deleting it.
 */
const CLAIM_DELETE = new LuaScript(`
${NOW}
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
`);

/**
 * After the bytes are deleted: the blob leaves the index and its size leaves the total — only under our own
 * marker (-1: it expired during the delete, which the marker's length rules out; nothing is changed then).
 */
const FORGET = new LuaScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[4])
local size = redis.call('HGET', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('DECRBY', KEYS[5], size)
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

/** A failed delete gives its claim back (only its own): the blob stays due for the next sweep. */
const UNCLAIM = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

export type AcquireOutcome =
  | { kind: 'held'; isNew: boolean; dueMs: number }
  | { kind: 'deleting' }
  | { kind: 'full'; storedBytes: number }
  | { kind: 'missing' };

export type ReleaseOutcome = 'held' | 'due' | 'gone';
export type ClaimOutcome = 'delete' | 'held' | 'gone' | 'busy';

/**
 * The one owner of blob lifetimes, for every backend: which holds keep a blob, when it is due, how many bytes
 * are stored, and who is deleting it. The bytes themselves live in a backend (Redis, a folder, a bucket).
 */
export class BlobLifetimesRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async acquire(
    hash: string,
    holder: string,
    ttlMs: number,
    size: number,
    options: { maxBytes?: number; mustExist?: boolean } = {},
  ): Promise<AcquireOutcome> {
    const reply = (await ACQUIRE.run(
      this.redis,
      [
        this.keys.blobHolds(hash),
        this.keys.blobDue,
        this.keys.blobSizes,
        this.keys.blobTotal,
        this.keys.blobDeleting(hash),
        this.keys.blob(hash),
      ],
      [hash, holder, Math.max(1, Math.round(ttlMs)), size, options.maxBytes ?? 0, options.mustExist ? '1' : '0'],
    )) as (number | string)[];
    switch (Number(reply[0])) {
      case -1:
        return { kind: 'deleting' };
      case -2:
        return { kind: 'full', storedBytes: Number(reply[1]) };
      case 0:
        return { kind: 'missing' };
      default:
        return { kind: 'held', isNew: Number(reply[1]) === 1, dueMs: Number(reply[2]) };
    }
  }

  async release(hash: string, holder: string): Promise<ReleaseOutcome> {
    const reply = (await RELEASE.run(
      this.redis,
      [this.keys.blobHolds(hash), this.keys.blobDue, this.keys.blobSizes, this.keys.blob(hash)],
      [hash, holder],
    )) as number[];
    return (['held', 'due', 'gone'] as const)[reply[0] ?? 2] ?? 'gone';
  }

  async claimDelete(hash: string, token: string, markerMs: number): Promise<ClaimOutcome> {
    const reply = await CLAIM_DELETE.run(
      this.redis,
      [this.keys.blobHolds(hash), this.keys.blobDue, this.keys.blobSizes, this.keys.blobDeleting(hash)],
      [hash, token, markerMs],
    );
    return (['held', 'delete', 'gone', 'busy'] as const)[Number(reply)] ?? 'busy';
  }

  /** false: the marker was not ours any more (see FORGET). */
  async forget(hash: string, token: string): Promise<boolean> {
    const reply = await FORGET.run(
      this.redis,
      [
        this.keys.blobHolds(hash),
        this.keys.blobDue,
        this.keys.blobSizes,
        this.keys.blobDeleting(hash),
        this.keys.blobTotal,
      ],
      [hash, token],
    );
    return Number(reply) === 1;
  }

  async unclaim(hash: string, token: string): Promise<void> {
    await UNCLAIM.run(this.redis, [this.keys.blobDeleting(hash)], [token]);
  }

  /** Alive: stored, and some hold has not expired yet. */
  async isAlive(hash: string): Promise<boolean> {
    const due = await this.dueAt(hash);
    return due !== null && due > Date.now();
  }

  /** Latest expiry of the blob's holds (ms), or null when it is not stored. */
  async dueAt(hash: string): Promise<number | null> {
    const due = await this.redis.zscore(this.keys.blobDue, hash);
    return due === null ? null : Number(due);
  }

  /** Blobs whose every hold has expired (or whose deletion was interrupted), oldest first, by Redis' clock. */
  async due(limit: number): Promise<string[]> {
    const [seconds, micros] = await this.redis.time();
    const now = seconds * 1000 + Math.floor(micros / 1000);
    return this.redis.zrangebyscore(this.keys.blobDue, '-inf', now, 'LIMIT', 0, limit);
  }

  async totals(): Promise<{ bytes: number; blobs: number }> {
    const [bytes, blobs] = await Promise.all([
      this.redis.get(this.keys.blobTotal),
      this.redis.hlen(this.keys.blobSizes),
    ]);
    return { bytes: Number(bytes ?? 0), blobs };
  }
}
