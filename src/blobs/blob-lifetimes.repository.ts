import type { RedisClient } from '../redis/redis-client';
import { BLOB_ACQUIRE, BLOB_CLAIM_DELETE, BLOB_FORGET, BLOB_RELEASE, LEASE_RELEASE } from '../redis/scripts';
import type { StreamKeys } from '../streams/stream-keys';

export type AcquireOutcome =
  /** stored: the bytes given to acquire are in the Redis backend's key (written now or already there). */
  | { kind: 'held'; isNew: boolean; dueMs: number; stored: boolean }
  | { kind: 'deleting' }
  /** storedBytes and capBytes are the image's shard's (the cap is BLOB_REDIS_MAX_BYTES split evenly over the shards). */
  | { kind: 'full'; storedBytes: number; capBytes: number }
  | { kind: 'missing' };

export type ReleaseOutcome = 'held' | 'due' | 'gone';
export type ClaimOutcome = 'delete' | 'held' | 'gone' | 'busy';

/**
 * The one owner of blob lifetimes, for every backend: which holds keep a blob, when it is due, how many bytes
 * are stored, and who is deleting it. The bytes themselves live in a backend (Redis, a folder, a bucket).
 *
 * With STREAM_SHARDS > 1 an image's keys live in the shard its hash names (StreamKeys.forBlob), each shard with its
 * own index, sizes and byte total, so images spread over the primaries like jobs do. The byte cap is then split
 * evenly: content hashes fill the shards alike, and one script still checks a put against its shard's total.
 */
export class BlobLifetimesRepository {
  private sweepTurn = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async acquire(
    hash: string,
    holder: string,
    ttlMs: number,
    size: number,
    options: { maxBytes?: number; mustExist?: boolean; redisBytes?: Buffer } = {},
  ): Promise<AcquireOutcome> {
    const k = this.keys.forBlob(hash);
    const capBytes = options.maxBytes ? this.shardCap(options.maxBytes) : 0;
    const reply = (await BLOB_ACQUIRE.run(
      this.redis,
      [k.blobHolds(hash), k.blobDue, k.blobSizes, k.blobTotal, k.blobDeleting(hash), k.blob(hash)],
      [
        hash,
        holder,
        Math.max(1, Math.round(ttlMs)),
        size,
        capBytes,
        options.mustExist ? '1' : '0',
        ...(options.redisBytes ? [options.redisBytes] : []),
      ],
    )) as (number | string)[];
    switch (Number(reply[0])) {
      case -1:
        return { kind: 'deleting' };
      case -2:
        return { kind: 'full', storedBytes: Number(reply[1]), capBytes };
      case 0:
        return { kind: 'missing' };
      default:
        return { kind: 'held', isNew: Number(reply[1]) === 1, dueMs: Number(reply[2]), stored: Number(reply[3]) === 1 };
    }
  }

  /** A shard's even share of the cap (never 0, which the scripts read as "no cap"). */
  shardCap(maxBytes: number): number {
    return Math.max(1, Math.floor(maxBytes / this.keys.shardCount));
  }

  async release(hash: string, holder: string): Promise<ReleaseOutcome> {
    const k = this.keys.forBlob(hash);
    const reply = (await BLOB_RELEASE.run(
      this.redis,
      [k.blobHolds(hash), k.blobDue, k.blobSizes, k.blob(hash)],
      [hash, holder],
    )) as number[];
    return (['held', 'due', 'gone'] as const)[reply[0] ?? 2] ?? 'gone';
  }

  async claimDelete(hash: string, token: string, markerMs: number): Promise<ClaimOutcome> {
    const k = this.keys.forBlob(hash);
    const reply = await BLOB_CLAIM_DELETE.run(
      this.redis,
      [k.blobHolds(hash), k.blobDue, k.blobSizes, k.blobDeleting(hash)],
      [hash, token, markerMs],
    );
    return (['held', 'delete', 'gone', 'busy'] as const)[Number(reply)] ?? 'busy';
  }

  /** false: the marker was not ours any more (see FORGET). */
  async forget(hash: string, token: string): Promise<boolean> {
    const k = this.keys.forBlob(hash);
    const reply = await BLOB_FORGET.run(
      this.redis,
      [k.blobHolds(hash), k.blobDue, k.blobSizes, k.blobDeleting(hash), k.blobTotal],
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
    const due = await this.redis.zscore(this.keys.forBlob(hash).blobDue, hash);
    return due === null ? null : Number(due);
  }

  /**
   * Blobs whose every hold has expired (or whose deletion was interrupted), oldest first within each shard, by
   * Redis' clock; at most `limit` over all shards.
   */
  async due(limit: number): Promise<string[]> {
    const [seconds, micros] = await this.redis.time();
    const now = seconds * 1000 + Math.floor(micros / 1000);
    // Each shard gets its share of the batch, starting one further each call, so a shard whose due blobs cannot be
    // deleted now (a backend error, another process's claim) never keeps the sweeper from the others.
    const shards = this.keys.shards;
    const share = Math.max(1, Math.ceil(limit / shards.length));
    const start = this.sweepTurn++ % shards.length;
    const inTurn = shards.map((_, i) => shards[(start + i) % shards.length]);
    const perShard = await Promise.all(
      inTurn.map((k) => this.redis.zrangebyscore(k.blobDue, '-inf', now, 'LIMIT', 0, share)),
    );
    return perShard.flat().slice(0, limit);
  }

  /** Bytes and images stored, over every shard, and the most bytes any one shard holds. */
  async totals(): Promise<{ bytes: number; blobs: number; shardMaxBytes: number }> {
    const perShard = await Promise.all(
      this.keys.shards.map(async (k) => {
        const [bytes, blobs] = await Promise.all([this.redis.get(k.blobTotal), this.redis.hlen(k.blobSizes)]);
        return { bytes: Number(bytes ?? 0), blobs };
      }),
    );
    return {
      bytes: perShard.reduce((n, s) => n + s.bytes, 0),
      blobs: perShard.reduce((n, s) => n + s.blobs, 0),
      shardMaxBytes: Math.max(...perShard.map((s) => s.bytes)),
    };
  }
}
