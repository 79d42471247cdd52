import type { RedisClient } from '../redis/redis-client';
import { BLOB_ACQUIRE, BLOB_CLAIM_DELETE, BLOB_FORGET, BLOB_RELEASE, LEASE_RELEASE } from '../redis/scripts';
import type { StreamKeys } from '../streams/stream-keys';

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
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async acquire(
    hash: string,
    holder: string,
    ttlMs: number,
    size: number,
    options: { maxBytes?: number; mustExist?: boolean } = {},
  ): Promise<AcquireOutcome> {
    const reply = (await BLOB_ACQUIRE.run(
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
    const reply = (await BLOB_RELEASE.run(
      this.redis,
      [this.keys.blobHolds(hash), this.keys.blobDue, this.keys.blobSizes, this.keys.blob(hash)],
      [hash, holder],
    )) as number[];
    return (['held', 'due', 'gone'] as const)[reply[0] ?? 2] ?? 'gone';
  }

  async claimDelete(hash: string, token: string, markerMs: number): Promise<ClaimOutcome> {
    const reply = await BLOB_CLAIM_DELETE.run(
      this.redis,
      [this.keys.blobHolds(hash), this.keys.blobDue, this.keys.blobSizes, this.keys.blobDeleting(hash)],
      [hash, token, markerMs],
    );
    return (['held', 'delete', 'gone', 'busy'] as const)[Number(reply)] ?? 'busy';
  }

  /** false: the marker was not ours any more (see FORGET). */
  async forget(hash: string, token: string): Promise<boolean> {
    const reply = await BLOB_FORGET.run(
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

  /**
   * A failed delete gives its claim back (only its own): the blob stays due for the next sweep. The claim marker is
   * an owner-checked lease, released by the one lease release.
   */
  async unclaim(hash: string, token: string): Promise<void> {
    await LEASE_RELEASE.run(this.redis, [this.keys.blobDeleting(hash)], [token]);
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
