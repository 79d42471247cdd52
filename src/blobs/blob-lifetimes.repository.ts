import type Redis from 'ioredis';
import { LuaScript } from '../common/lua-script';
import type { StreamKeys } from '../streams/stream-keys';

/**
 * Adds a hold. Refused while the same content is being deleted (-1: retry shortly) and, for new content, when
 * the byte cap would be passed (-2). 0: mustExist was asked and the blob is not stored.
 * Returns { 1, isNew, dueMs }.
 */
const ACQUIRE = new LuaScript(`
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
local current = redis.call('ZSCORE', KEYS[1], ARGV[2])
if (not current) or tonumber(current) < tonumber(ARGV[3]) then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], top[2])
return {1, known and 0 or 1, top[2]}
`);

/**
 * Drops a hold (ARGV[2], or none for a sweep) and every expired one. With holds left: { 0, dueMs }. With none:
 * { 1 } and a deletion marker — the caller deletes the bytes, then calls FORGET; the entry stays due (now) so a
 * caller that dies midway is retried by the sweeper. { 2 }: not stored (already gone).
 */
const RELEASE = new LuaScript(`
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[1], ARGV[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[1] then
  redis.call('ZADD', KEYS[2], top[2], ARGV[1])
  return {0, top[2]}
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {2}
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
return {1}
`);

/** After the bytes are deleted: the blob leaves the index and its size leaves the total. */
const FORGET = new LuaScript(`
redis.call('DEL', KEYS[4])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
local size = redis.call('HGET', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('DECRBY', KEYS[5], size)
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

export type AcquireOutcome =
  | { kind: 'held'; isNew: boolean; dueMs: number }
  | { kind: 'deleting' }
  | { kind: 'full'; storedBytes: number }
  | { kind: 'missing' };

export type ReleaseOutcome = { kind: 'held'; dueMs: number } | { kind: 'delete' } | { kind: 'gone' };

/** Long enough for one backend delete with its timeout; a dead deleter's marker expires and the sweeper retries. */
const DELETE_MARKER_MS = 60_000;

/**
 * The one owner of blob lifetimes, for every backend: which holds keep a blob, when it is due, how many bytes
 * are stored. The bytes themselves live in a backend (Redis, a folder, a bucket).
 */
export class BlobLifetimesRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async acquire(
    hash: string,
    holder: string,
    expiresAtMs: number,
    size: number,
    options: { maxBytes?: number; mustExist?: boolean } = {},
  ): Promise<AcquireOutcome> {
    const reply = (await ACQUIRE.run(this.redis, this.keysFor(hash), [
      hash,
      holder,
      expiresAtMs,
      size,
      options.maxBytes ?? 0,
      options.mustExist ? '1' : '0',
    ])) as (number | string)[];
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

  async release(hash: string, holder: string | undefined, nowMs = Date.now()): Promise<ReleaseOutcome> {
    const reply = (await RELEASE.run(
      this.redis,
      [this.keys.blobHolds(hash), this.keys.blobDue, this.keys.blobSizes, this.keys.blobDeleting(hash)],
      [hash, holder ?? '', nowMs, DELETE_MARKER_MS],
    )) as (number | string)[];
    switch (Number(reply[0])) {
      case 0:
        return { kind: 'held', dueMs: Number(reply[1]) };
      case 1:
        return { kind: 'delete' };
      default:
        return { kind: 'gone' };
    }
  }

  async forget(hash: string): Promise<void> {
    await FORGET.run(
      this.redis,
      [
        this.keys.blobHolds(hash),
        this.keys.blobDue,
        this.keys.blobSizes,
        this.keys.blobDeleting(hash),
        this.keys.blobTotal,
      ],
      [hash],
    );
  }

  async clearDeleting(hash: string): Promise<void> {
    await this.redis.del(this.keys.blobDeleting(hash));
  }

  /** Alive: stored, and some hold has not expired yet. */
  async isAlive(hash: string, nowMs = Date.now()): Promise<boolean> {
    const due = await this.redis.zscore(this.keys.blobDue, hash);
    return due !== null && Number(due) > nowMs;
  }

  /** Latest expiry of the blob's holds (ms), or null when it is not stored. */
  async dueAt(hash: string): Promise<number | null> {
    const due = await this.redis.zscore(this.keys.blobDue, hash);
    return due === null ? null : Number(due);
  }

  /** Blobs whose every hold has expired (or whose deletion was interrupted), oldest first. */
  async due(nowMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.blobDue, '-inf', nowMs, 'LIMIT', 0, limit);
  }

  async totals(): Promise<{ bytes: number; blobs: number }> {
    const [bytes, blobs] = await Promise.all([
      this.redis.get(this.keys.blobTotal),
      this.redis.hlen(this.keys.blobSizes),
    ]);
    return { bytes: Number(bytes ?? 0), blobs };
  }

  private keysFor(hash: string): string[] {
    return [
      this.keys.blobHolds(hash),
      this.keys.blobDue,
      this.keys.blobSizes,
      this.keys.blobTotal,
      this.keys.blobDeleting(hash),
    ];
  }
}
