import { Readable } from 'node:stream';
import type Redis from 'ioredis';
import type { StreamKeys } from '../streams/stream-keys';
import type { BlobBytes } from './blob-bytes';

/**
 * Bytes as Redis strings expiring at their due time: the single-machine default. Every byte here is Redis memory,
 * so the store caps the total (BLOB_REDIS_MAX_BYTES); see README for sizing.
 */
export class RedisBlobBytes implements BlobBytes {
  readonly expiresNatively = true;

  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async write(hash: string, bytes: Buffer, _type: string, dueMs: number): Promise<void> {
    await this.redis.set(this.keys.blob(hash), bytes, 'PXAT', dueMs);
  }

  async extend(hash: string, dueMs: number): Promise<void> {
    await this.redis.pexpireat(this.keys.blob(hash), dueMs);
  }

  read(hash: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.blob(hash));
  }

  async open(hash: string): Promise<{ body: Readable; size: number } | null> {
    const bytes = await this.read(hash);
    return bytes ? { body: Readable.from([bytes]), size: bytes.length } : null;
  }

  async exists(hash: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.blob(hash))) === 1;
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
