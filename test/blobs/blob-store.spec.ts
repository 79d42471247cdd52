import { existsSync, mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { BlobStoreFullError, BlobStoreUnavailableError } from '../../src/blobs/blob-errors';
import { createBlobStore } from '../../src/blobs/blob-store.factory';
import type { BlobStore } from '../../src/blobs/blob-store';
import type { BlobConfig } from '../../src/config/app-config';
import { BLOB_ACQUIRE } from '../../src/redis/scripts';
import { StreamKeys } from '../../src/streams/stream-keys';
import { pollUntil } from '../support/poll-until';
import { recordWrites } from '../support/redis-writes';
import { S3_TEST_CREDENTIALS, TestS3Server } from '../support/s3-server';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

const quiet = { warn: () => undefined };
const png = (n: number, size = 2048): Buffer => Buffer.alloc(size, n);

type Backend = 'redis' | 'fs' | 's3';

/** The same contract, on every backend: a real Redis for the index, a real folder, a real S3-protocol server. */
describe.each<Backend>(['redis', 'fs', 's3'])('blob store on the %s backend', (backend) => {
  let redis: Redis;
  let keys: StreamKeys;
  let s3: TestS3Server | undefined;
  let dir: string | undefined;
  let store: BlobStore;
  let close: () => void;

  const config = (overrides: Partial<BlobConfig> = {}): BlobConfig => {
    const base = { ttlSeconds: 3600, redisMaxBytes: 0 };
    if (backend === 's3') {
      return {
        backend,
        ...base,
        s3: {
          bucket: s3!.bucket,
          endpoint: s3!.endpoint,
          region: 'us-east-1',
          forcePathStyle: true,
          presign: true,
          keyPrefix: 'blobs/',
          timeoutMs: 1_500,
          credentials: S3_TEST_CREDENTIALS,
        },
        ...overrides,
      };
    }
    return backend === 'fs' ? { backend, ...base, dir: dir!, ...overrides } : { backend, ...base, ...overrides };
  };

  /** Whether the bytes themselves are still in the backend (not just in our index). */
  const bytesStored = async (hash: string): Promise<boolean> => {
    if (backend === 'redis') return (await redis.exists(keys.blob(hash))) === 1;
    if (backend === 'fs') return existsSync(store.locate(hash));
    return s3!.has(store.locate(hash).replace(`s3://${s3!.bucket}/`, ''));
  };

  beforeAll(async () => {
    redis = testRedis();
    if (backend === 's3') s3 = await new TestS3Server().start();
  });

  beforeEach(async () => {
    keys = new StreamKeys(uniquePrefix(`blob-${backend}`));
    if (backend === 'fs') dir = mkdtempSync(join(tmpdir(), 'cr-blobs-'));
    ({ store, close } = await createBlobStore(config(), redis, keys, quiet));
  });

  afterEach(async () => {
    close();
    await cleanupPrefix(redis, keys.prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterAll(async () => {
    await s3?.destroy();
    redis.disconnect();
  });

  it('stores bytes once per content and reads them back whole and as a stream', async () => {
    const ref = await store.put(png(1), 'image/png', { holder: 'out:a', ttlSeconds: 60 });
    expect(ref).toEqual({ hash: expect.stringMatching(/^[a-f0-9]{64}$/), size: 2048, type: 'image/png' });
    expect(await store.get(ref.hash)).toEqual(png(1));
    const opened = await store.open(ref.hash);
    const chunks: Buffer[] = [];
    for await (const chunk of opened!.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(png(1));
    expect(opened!.size).toBe(2048);
    expect(await store.exists(ref.hash)).toBe(true);
    expect(await store.get('f'.repeat(64))).toBeNull();
    expect(await store.get('../../etc/passwd')).toBeNull();
    expect(await store.usage()).toMatchObject({ backend, bytes: 2048, blobs: 1 });
  });

  it('a blob lives while any hold does: the last release deletes the bytes and frees their count', async () => {
    const ref = await store.put(png(2), 'image/png', { holder: 'in:job-1', ttlSeconds: 60 });
    await store.put(png(2), 'image/png', { holder: 'in:job-2', ttlSeconds: 60 });
    expect(await store.usage()).toMatchObject({ bytes: 2048, blobs: 1 });
    await store.release(ref.hash, 'in:job-1');
    expect(await store.get(ref.hash)).toEqual(png(2));
    await store.release(ref.hash, 'in:job-1'); // idempotent: not job-2's hold
    expect(await bytesStored(ref.hash)).toBe(true);
    await store.release(ref.hash, 'in:job-2');
    expect(await store.get(ref.hash)).toBeNull();
    // The release never waits on the backend: the sweeper deletes the bytes (the janitor runs it soon after).
    expect(await store.sweepExpired()).toBe(1);
    expect(await bytesStored(ref.hash)).toBe(false);
    expect(await store.usage()).toMatchObject({ bytes: 0, blobs: 0 });
    await store.release(ref.hash, 'in:job-2'); // releasing a gone blob is harmless
  });

  it('expires when every hold has: reads answer null at once, the sweeper deletes the bytes', async () => {
    const ref = await store.put(png(3), 'image/png', { holder: 'out:short', ttlSeconds: 1 });
    const kept = await store.put(png(4), 'image/png', { holder: 'out:long', ttlSeconds: 600 });
    await pollUntil(
      () => store.get(ref.hash),
      (bytes) => bytes === null,
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    await pollUntil(
      () => store.sweepExpired(),
      (n) => n === 1,
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(await bytesStored(ref.hash)).toBe(false);
    expect(await store.get(kept.hash)).toEqual(png(4));
    expect(await store.usage()).toMatchObject({ bytes: 2048, blobs: 1 });
    expect(await store.sweepExpired()).toBe(0);
  });

  it('retain adds a hold to a stored blob and refuses a gone one', async () => {
    const ref = await store.put(png(5), 'image/png', { holder: 'in:old', ttlSeconds: 60 });
    expect(await store.retain(ref.hash, { holder: 'in:redriven', ttlSeconds: 60 })).toBe(true);
    await store.release(ref.hash, 'in:old');
    expect(await store.get(ref.hash)).toEqual(png(5));
    await store.release(ref.hash, 'in:redriven');
    await store.sweepExpired();
    expect(await store.retain(ref.hash, { holder: 'in:late', ttlSeconds: 60 })).toBe(false);
    expect(await store.usage()).toMatchObject({ blobs: 0 });
  });

  it('a put of content being deleted waits until the bytes are gone, then writes them anew', async () => {
    const ref = await store.put(png(6), 'image/png', { holder: 'in:x', ttlSeconds: 60 });
    await store.release(ref.hash, 'in:x');
    await redis.set(keys.blobDeleting(ref.hash), 'other-process', 'PX', 60_000); // another sweeper claimed it
    let done = false;
    const put = store.put(png(6), 'image/png', { holder: 'in:y', ttlSeconds: 60 }).then(() => (done = true));
    const waitedFrom = Date.now();
    await pollUntil(
      () => Date.now() - waitedFrom,
      (ms) => ms > 300,
      { intervalMs: 50 },
    );
    expect(done).toBe(false);
    expect(await redis.zscore(keys.blobHolds(ref.hash), 'in:y')).toBeNull();
    // The other process finishes: bytes deleted, index forgotten, marker gone.
    await redis.set(keys.blobDeleting(ref.hash), 'mine');
    if (backend === 'redis') await redis.del(keys.blob(ref.hash));
    else if (backend === 'fs') rmSync(store.locate(ref.hash));
    await store.sweepExpired(); // cannot claim it (marker held): deletes nothing
    expect(await bytesStored(ref.hash)).toBe(backend === 's3');
    await redis.del(keys.blobDeleting(ref.hash));
    await put;
    expect(await store.get(ref.hash)).toEqual(png(6));
    expect(await bytesStored(ref.hash)).toBe(true);
    expect(await redis.zscore(keys.blobHolds(ref.hash), 'in:y')).not.toBeNull();
  });

  it('deployments sharing a backend own their bytes: one prefix deleting a blob leaves the other its copy', async () => {
    const otherKeys = new StreamKeys(uniquePrefix(`blob-${backend}-other`));
    const other = await createBlobStore(config(), redis, otherKeys, quiet);
    try {
      const ref = await store.put(png(14), 'image/png', { holder: 'out:mine', ttlSeconds: 60 });
      await other.store.put(png(14), 'image/png', { holder: 'out:theirs', ttlSeconds: 60 });
      await other.store.release(ref.hash, 'out:theirs');
      expect(await other.store.sweepExpired()).toBe(1);
      expect(await store.get(ref.hash)).toEqual(png(14));
      expect(store.locate(ref.hash)).not.toBe(other.store.locate(ref.hash));
    } finally {
      other.close();
      await cleanupPrefix(redis, otherKeys.prefix);
    }
  });

  if (backend === 'fs') {
    it('known content older than BLOB_TTL_SECONDS is written again (a bucket lifecycle rule counts from writes)', async () => {
      const ref = await store.put(png(15), 'image/png', { holder: 'in:1', ttlSeconds: 3600 });
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      utimesSync(store.locate(ref.hash), twoHoursAgo, twoHoursAgo);
      await store.put(png(15), 'image/png', { holder: 'in:2', ttlSeconds: 3600 });
      expect(statSync(store.locate(ref.hash)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    });
  }

  if (backend === 'redis') {
    it('BLOB_REDIS_MAX_BYTES caps new content with a clear error; released space is usable again', async () => {
      close();
      ({ store, close } = await createBlobStore(config({ redisMaxBytes: 5000 }), redis, keys, quiet));
      const first = await store.put(png(7), 'image/png', { holder: 'out:1', ttlSeconds: 60 });
      await store.put(png(8), 'image/png', { holder: 'out:2', ttlSeconds: 60 });
      await store.put(png(8), 'image/png', { holder: 'out:3', ttlSeconds: 60 }); // known content: no new bytes
      const refused = store.put(png(9), 'image/png', { holder: 'out:4', ttlSeconds: 60 });
      await expect(refused).rejects.toBeInstanceOf(BlobStoreFullError);
      await expect(refused).rejects.toThrow(/BLOB_REDIS_MAX_BYTES/);
      expect(await store.usage()).toEqual({
        backend: 'redis',
        bytes: 4096,
        blobs: 2,
        maxBytes: 5000,
        fullest: 4096 / 5000,
      });
      await store.release(first.hash, 'out:1');
      await store.sweepExpired();
      await store.put(png(9), 'image/png', { holder: 'out:4', ttlSeconds: 60 });
    });

    it('a put is one script: known content keeps its bytes, bytes lost meanwhile are written again', async () => {
      const recorder = recordWrites(redis);
      let ref;
      try {
        ref = await store.put(png(11), 'image/png', { holder: 'out:p1', ttlSeconds: 60 });
      } finally {
        recorder.stop();
      }
      expect(recorder.writes).toHaveLength(1);
      expect(recorder.writes[0]).toContain(BLOB_ACQUIRE.sha);
      expect(await store.get(ref.hash)).toEqual(png(11));
      await redis.set(keys.blob(ref.hash), 'still there', 'KEEPTTL');
      await store.put(png(11), 'image/png', { holder: 'out:p2', ttlSeconds: 60 });
      expect(await redis.get(keys.blob(ref.hash))).toBe('still there'); // known and stored: not sent again
      await redis.del(keys.blob(ref.hash));
      await store.put(png(11), 'image/png', { holder: 'out:p3', ttlSeconds: 60 });
      expect(await store.get(ref.hash)).toEqual(png(11));
      expect(await redis.pttl(keys.blob(ref.hash))).toBeGreaterThan(50_000);
    });

    it('bytes expire natively with their latest hold, kept in step by the index scripts', async () => {
      const ref = await store.put(png(10), 'image/png', { holder: 'out:t', ttlSeconds: 120 });
      const ttl = await redis.pttl(keys.blob(ref.hash));
      expect(ttl).toBeGreaterThan(110_000);
      expect(ttl).toBeLessThanOrEqual(120_000);
      await store.retain(ref.hash, { holder: 'out:t2', ttlSeconds: 600 });
      expect(await redis.pttl(keys.blob(ref.hash))).toBeGreaterThan(590_000);
      await store.put(png(10), 'image/png', { holder: 'out:t3', ttlSeconds: 60 });
      expect(await redis.pttl(keys.blob(ref.hash))).toBeGreaterThan(590_000); // a shorter hold never shortens it
      await store.release(ref.hash, 'out:t2');
      const after = await redis.pttl(keys.blob(ref.hash));
      expect(after).toBeGreaterThan(110_000);
      expect(after).toBeLessThanOrEqual(120_000);
    });
  }

  if (backend === 's3') {
    it('presigned URLs serve the bytes straight from the bucket, and none is made for an expired blob', async () => {
      const ref = await store.put(png(11), 'image/png', { holder: 'out:p', ttlSeconds: 60 });
      const url = await store.presignedUrl(ref);
      expect(url).toMatch(new RegExp(`^${s3!.endpoint}/${s3!.bucket}/blobs/`));
      const response = await fetch(url!);
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(png(11));
      await store.release(ref.hash, 'out:p');
      expect(await store.presignedUrl(ref)).toBeUndefined();
    });

    it('an outage is a clear, retriable error and loses nothing: puts and reads work again after it', async () => {
      const before = await store.put(png(12), 'image/png', { holder: 'out:o1', ttlSeconds: 60 });
      await s3!.stop();
      try {
        const failed = store.put(png(13), 'image/png', { holder: 'out:o2', ttlSeconds: 60 });
        await expect(failed).rejects.toBeInstanceOf(BlobStoreUnavailableError);
        await expect(failed).rejects.toThrow(/blob store unavailable during upload/);
        await expect(store.get(before.hash)).rejects.toBeInstanceOf(BlobStoreUnavailableError);
        await expect(store.probe()).rejects.toBeInstanceOf(BlobStoreUnavailableError);
        // A release needs only Redis; the delete fails and leaves the blob due (reads say expired at once).
        await store.release(before.hash, 'out:o1');
        expect(await store.get(before.hash)).toBeNull();
        expect(await store.sweepExpired()).toBe(0);
      } finally {
        await s3!.start();
      }
      expect(await bytesStored(before.hash)).toBe(true);
      // The released blob and the failed put's hold (dropped at once, its entry left due) both go.
      expect(await store.sweepExpired()).toBe(2);
      expect(await bytesStored(before.hash)).toBe(false);
      expect(await store.usage()).toMatchObject({ bytes: 0, blobs: 0 });
      const after = await store.put(png(13), 'image/png', { holder: 'out:o2', ttlSeconds: 60 });
      expect(await store.get(after.hash)).toEqual(png(13));
    });

    it('a bucket that does not exist stops start-up naming BLOB_S3_BUCKET', async () => {
      const missing = config();
      await expect(
        createBlobStore({ ...missing, s3: { ...missing.s3!, bucket: 'no-such-bucket' } }, redis, keys, quiet),
      ).rejects.toThrow(/BLOB_S3_BUCKET=no-such-bucket/);
    });
  }
});
