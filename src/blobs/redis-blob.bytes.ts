import { Readable } from 'node:stream';
import type { RedisClient } from '../redis/redis-client';
import { BLOB_BYTES_WRITE } from '../redis/scripts';
import type { StreamKeys } from '../streams/stream-keys';
import type { BlobBytes } from './blob-bytes';

/**
 * Bytes as Redis strings expiring with their holds: the single-machine default. Every byte here is Redis memory,
 * so the store caps the total (BLOB_REDIS_MAX_BYTES); see docs/operations.md for sizing.
 */
export class RedisBlobBytes implements BlobBytes {
  readonly expiresNatively = true;
  readonly inIndexRedis = true;
  readonly maxDeleteMs = 5_000;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async write(hash: string, bytes: Buffer): Promise<void> {
    await BLOB_BYTES_WRITE.run(this.redis, [this.keys.blob(hash), this.keys.blobHolds(hash)], [bytes]);
  }

  async writtenAt(hash: string): Promise<number | null> {
    return (await this.redis.exists(this.keys.blob(hash))) === 1 ? Date.now() : null;
  }

  read(hash: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.blob(hash));
  }

  async open(hash: string): Promise<{ body: Readable; size: number } | null> {
    const bytes = await this.read(hash);
    return bytes ? { body: Readable.from([bytes]), size: bytes.length } : null;
  }

  async delete(hash: string): Promise<void> {
    await this.redis.unlink(this.keys.blob(hash));
  }

  /** The Redis indicator already covers this connection. */
  async probe(): Promise<void> {}

  locate(hash: string): string {
    return `redis:${this.keys.blob(hash)}`;
  }
}
