import type { Readable } from 'node:stream';
import type { BlobRef } from '../streams/job-event.types';

/**
 * Where a backend keeps the bytes. Lifetimes are not its business (BlobLifetimesRepository decides them). Each
 * deployment prefix (STREAM_PREFIX) has its own namespace in the backend, so two indexes never delete each
 * other's bytes (a replay sandbox sharing the bucket, say).
 */
export interface BlobBytes {
  /** True when the backend expires bytes itself with their holds (Redis TTL), so reads need no index check. */
  readonly expiresNatively: boolean;
  /**
   * The bytes live in the index's own Redis, under the key its scripts expire (the Redis backend): a put hands them
   * to the index's acquire script and is one round trip, not two.
   */
  readonly inIndexRedis?: boolean;
  write(hash: string, bytes: Buffer, type: string): Promise<void>;
  /** When the stored bytes were last written (ms), or null when they are not there. */
  writtenAt(hash: string): Promise<number | null>;
  read(hash: string): Promise<Buffer | null>;
  open(hash: string): Promise<{ body: Readable; size: number } | null>;
  delete(hash: string): Promise<void>;
  presign?(ref: BlobRef, expiresInSeconds: number): Promise<string>;
  locate(hash: string): string;
  /** Throws when the backend cannot be reached (for /health). */
  probe(): Promise<void>;
  /** The longest a delete can take, timeouts and retries included: deletion markers outlast it. */
  readonly maxDeleteMs: number;
}

/** A namespace for object names and folders from a key prefix: `cr:` → `cr_`, `{cr}:` → `_cr__`. */
export function blobNamespace(prefix: string): string {
  return prefix.replace(/[^A-Za-z0-9._-]/g, '_');
}
