import type { RedisClient } from '../redis/redis-client';
import type { Logger } from 'pino';
import type { BlobConfig } from '../config/app-config';
import type { StreamKeys } from '../streams/stream-keys';
import { BlobLifetimesRepository } from './blob-lifetimes.repository';
import { createBlobStore } from './blob-store.factory';

/**
 * The blob store of another key prefix, on this process's connection and backend (a replay copies blobs into a
 * sandbox's own store): the Redis client stays in the blobs infrastructure.
 */
export class BlobStoreOpener {
  constructor(
    private readonly redis: RedisClient,
    private readonly config: BlobConfig,
  ) {}

  /** The prefix's store; the caller closes it. */
  open(keys: StreamKeys, log: Pick<Logger, 'warn'>): ReturnType<typeof createBlobStore> {
    return createBlobStore(this.config, this.redis, keys, log);
  }

  /** The prefix's blob holds and due times. */
  lifetimes(keys: StreamKeys): BlobLifetimesRepository {
    return new BlobLifetimesRepository(this.redis, keys);
  }
}
