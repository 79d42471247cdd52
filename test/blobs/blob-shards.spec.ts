import type Redis from 'ioredis';
import { BlobStoreFullError } from '../../src/blobs/blob-errors';
import { createBlobStore } from '../../src/blobs/blob-store.factory';
import { blobRefFor, type BlobStore } from '../../src/blobs/blob-store';
import { StreamKeys } from '../../src/streams/stream-keys';
import { cleanupPrefix, testRedis, uniqueShardedPrefix } from '../support/test-redis';

const quiet = { warn: () => undefined };
const SHARDS = 3;

/** `count` distinct 2 KiB images whose hashes fall in `shard` (content addressing decides the shard). */
function imagesOfShard(keys: StreamKeys, shard: number, count: number, seed = 0): Buffer[] {
  const found: Buffer[] = [];
  for (let n = seed; found.length < count && n < seed + 10_000; n++) {
    const bytes = Buffer.alloc(2048, n % 256);
    bytes.writeUInt32BE(n, 0);
    if (keys.shardOfBlob(blobRefFor(bytes, 'image/png').hash) === shard) found.push(bytes);
  }
  return found;
}

/**
 * STREAM_SHARDS > 1: an image's index, holds, size and bytes live in the shard its hash names (so images spread over
 * a cluster's primaries like jobs), and the store's operations — usage, the sweeper, the byte cap — span the shards.
 */
describe('blob store with shards (Redis backend, real Redis)', () => {
  let redis: Redis;
  let keys: StreamKeys;
  let store: BlobStore;
  let close: () => void;

  const open = async (redisMaxBytes = 0): Promise<void> => {
    ({ store, close } = await createBlobStore(
      { backend: 'redis', ttlSeconds: 3600, redisMaxBytes },
      redis,
      keys,
      quiet,
    ));
  };

  beforeEach(() => {
    redis = testRedis();
    keys = StreamKeys.sharded(uniqueShardedPrefix('blob-shards'), SHARDS);
  });

  afterEach(async () => {
    close();
    await cleanupPrefix(redis, keys.basePrefix);
    redis.disconnect();
  });

  it("keeps every key of an image in its hash's shard, whichever shard's keys are asked", async () => {
    await open();
    const images = [0, 1, 2].map((s) => imagesOfShard(keys, s, 1)[0]!);
    for (const [shard, bytes] of images.entries()) {
      const ref = await store.put(bytes, 'image/png', { holder: `out:${shard}`, ttlSeconds: 60 });
      const own = keys.forShard(shard);
      expect(keys.forShard((shard + 1) % SHARDS).blobHolds(ref.hash)).toBe(own.blobHolds(ref.hash));
      expect(await redis.zscore(own.blobHolds(ref.hash), `out:${shard}`)).not.toBeNull();
      expect(await redis.zscore(own.blobDue, ref.hash)).not.toBeNull();
      expect(await redis.hget(own.blobSizes, ref.hash)).toBe('2048');
      expect(await redis.get(own.blobTotal)).toBe('2048');
      expect(await redis.getBuffer(own.blob(ref.hash))).toEqual(bytes);
      expect(await store.get(ref.hash)).toEqual(bytes);
    }
    // Shard 0 (the home keys) holds only its own image's index entry.
    expect(await redis.zcard(keys.blobDue)).toBe(1);
    expect(await store.usage()).toMatchObject({ bytes: 3 * 2048, blobs: 3 });
  });

  it('the sweeper deletes due images of every shard, at most `limit` per pass', async () => {
    await open();
    const images = [0, 1, 2].flatMap((s) => imagesOfShard(keys, s, 2));
    const refs = [];
    for (const bytes of images) refs.push(await store.put(bytes, 'image/png', { holder: 'in:job', ttlSeconds: 60 }));
    for (const ref of refs) await store.release(ref.hash, 'in:job');
    expect(await store.sweepExpired(4)).toBe(4);
    expect(await store.sweepExpired(4)).toBe(2);
    expect(await store.sweepExpired(4)).toBe(0);
    for (const ref of refs) expect(await redis.exists(keys.blob(ref.hash))).toBe(0);
    expect(await store.usage()).toMatchObject({ bytes: 0, blobs: 0 });
  });

  it("a shard whose due images cannot be deleted now does not keep the sweeper from the other shards'", async () => {
    await open();
    const stuck = imagesOfShard(keys, 0, 4);
    const [other] = imagesOfShard(keys, 1, 1);
    const refs = [];
    for (const bytes of [...stuck, other!]) {
      refs.push(await store.put(bytes, 'image/png', { holder: 'in:job', ttlSeconds: 60 }));
    }
    for (const ref of refs) await store.release(ref.hash, 'in:job');
    // Another process claimed shard 0's deletions (and has not finished them).
    for (const ref of refs.slice(0, 4)) await redis.set(keys.blobDeleting(ref.hash), 'another-sweeper', 'PX', 60_000);
    const otherRef = refs[4]!;
    for (let pass = 0; pass < SHARDS && (await redis.exists(keys.blob(otherRef.hash))) === 1; pass++) {
      await store.sweepExpired(2);
    }
    expect(await redis.exists(keys.blob(otherRef.hash))).toBe(0);
  });

  it('BLOB_REDIS_MAX_BYTES is split evenly: a full shard refuses new content, naming the split; others still take it', async () => {
    await open(SHARDS * 5_000); // 5,000 bytes per shard: two 2 KiB images fit, a third does not
    const [a, b, c] = imagesOfShard(keys, 1, 3);
    await store.put(a!, 'image/png', { holder: 'out:a', ttlSeconds: 60 });
    await store.put(b!, 'image/png', { holder: 'out:b', ttlSeconds: 60 });
    const refused = store.put(c!, 'image/png', { holder: 'out:c', ttlSeconds: 60 });
    await expect(refused).rejects.toBeInstanceOf(BlobStoreFullError);
    await expect(store.put(c!, 'image/png', { holder: 'out:c', ttlSeconds: 60 })).rejects.toThrow(
      /4096 of 5000 bytes in use in this image's shard \(BLOB_REDIS_MAX_BYTES=15000 split evenly over STREAM_SHARDS\)/,
    );
    const other = imagesOfShard(keys, 2, 1)[0]!;
    await expect(store.put(other, 'image/png', { holder: 'out:d', ttlSeconds: 60 })).resolves.toMatchObject({
      size: 2048,
    });
    // The fullest shard (two images in shard 1) against its share.
    expect(await store.usage()).toEqual({
      backend: 'redis',
      bytes: 3 * 2048,
      blobs: 3,
      maxBytes: 15_000,
      fullest: 4096 / 5000,
    });
  });
});

describe('StreamKeys: where images and instance leases live', () => {
  it('one shard keeps the names as they were', () => {
    const one = StreamKeys.sharded('cr:', 1);
    expect(one.blob('ab12')).toBe('cr:blob:ab12');
    expect(one.blobHolds('ab12')).toBe('cr:blob:holds:ab12');
    expect(one.blobDue).toBe('cr:blob:due');
    expect(one.instanceLeases('127.0.0.1_8188')).toBe('cr:gpu:leases:127.0.0.1_8188');
    expect(one.modelTails).toBe('cr:gpu:model-tails');
  });

  it('with shards, the instance leases and model tails sit in the last shard, away from the home keys', () => {
    const home = StreamKeys.sharded('cr:', 6);
    const last = home.forShard(5);
    expect(home.instanceLeases('i1')).toBe(`${last.prefix}gpu:leases:i1`);
    expect(home.forShard(3).modelTails).toBe(`${last.prefix}gpu:model-tails`);
    expect(last.prefix).not.toBe(home.prefix);
  });

  it("an image's shard is its hash's first 32 bits mod N, spread over every shard", () => {
    const home = StreamKeys.sharded('cr:', 6);
    expect(home.shardOfBlob('0000000b' + 'f'.repeat(56))).toBe(11 % 6);
    const seen = new Set<number>();
    for (let n = 0; n < 200; n++) seen.add(home.shardOfBlob(blobRefFor(Buffer.from([n]), 'image/png').hash));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
