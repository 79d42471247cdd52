import type { RedisClient } from '../redis/redis-client';
import type { Logger } from 'pino';
import type { BlobConfig } from '../config/app-config';
import type { StreamKeys } from '../streams/stream-keys';
import type { BlobBytes } from './blob-bytes';
import { BlobLifetimesRepository } from './blob-lifetimes.repository';
import { FsBlobBytes } from './fs-blob.bytes';
import { LifecycledBlobStore } from './lifecycled-blob.store';
import { RedisBlobBytes } from './redis-blob.bytes';

/**
 * The configured backend behind one lifecycle. A misconfigured one (BLOB_DIR not writable, a bucket that does not
 * exist or refuses the credentials) stops start-up naming the variable; an object store that is merely down
 * does not: jobs that need it retry, and /health says why.
 */
export async function createBlobStore(
  config: BlobConfig,
  redis: RedisClient,
  keys: StreamKeys,
  log: Pick<Logger, 'warn'>,
): Promise<{ store: LifecycledBlobStore; close(): void }> {
  let bytes: BlobBytes;
  let close = (): void => undefined;
  if (config.backend === 's3' && config.s3) {
    // Loaded only for this backend: the AWS SDK is tens of MB of every other process's memory.
    const { S3BlobBytes } = await import('./s3-blob.bytes');
    const s3 = new S3BlobBytes(
      {
        bucket: config.s3.bucket,
        endpoint: config.s3.endpoint,
        region: config.s3.region,
        forcePathStyle: config.s3.forcePathStyle,
        keyPrefix: config.s3.keyPrefix,
        credentials: config.s3.credentials,
        requestTimeoutMs: config.s3.timeoutMs,
      },
      keys.prefix,
    );
    const check = await s3.checkBucket();
    if (check !== 'ok')
      log.warn({ bucket: config.s3.bucket, reason: check.unreachable }, 'object store unreachable at start-up');
    bytes = s3;
    close = () => s3.close();
  } else if (config.backend === 'fs' && config.dir !== undefined) {
    bytes = await FsBlobBytes.open(config.dir, keys.prefix);
  } else {
    bytes = new RedisBlobBytes(redis, keys);
  }
  const store = new LifecycledBlobStore(new BlobLifetimesRepository(redis, keys), bytes, {
    backend: config.backend,
    maxBytes: config.backend === 'redis' ? config.redisMaxBytes : 0,
    presign: config.s3?.presign ?? false,
    rewriteAfterMs: config.ttlSeconds * 1000,
    onDeleteError: (hash, err) =>
      log.warn({ hash, err: (err as Error).message }, 'blob delete failed; the sweeper retries it'),
  });
  return { store, close };
}
