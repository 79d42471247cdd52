import type Redis from 'ioredis';
import type { StreamKeys } from '../streams/stream-keys';
import type { BlobRef } from '../streams/job-event.types';
import { BLOB_HASH_PATTERN, blobRefFor, type BlobStore } from './blob-store';

/** Blobs as Redis strings with a TTL: the single-machine default (see README for the memory arithmetic). */
export class RedisBlobStore implements BlobStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
    private readonly ttlSeconds: number,
  ) {}

  async put(bytes: Buffer, type: string): Promise<BlobRef> {
    const ref = blobRefFor(bytes, type);
    await this.redis.set(this.keys.blob(ref.hash), bytes, 'EX', this.ttlSeconds);
    return ref;
  }

  async get(hash: string): Promise<Buffer | null> {
    if (!BLOB_HASH_PATTERN.test(hash)) return null;
    return this.redis.getBuffer(this.keys.blob(hash));
  }

  locate(hash: string): string {
    return `redis:${this.keys.blob(hash)}`;
  }
}
