import type { Readable } from 'node:stream';
import type { BlobRef } from '../streams/job-event.types';

/** Where a backend keeps the bytes. Lifetimes are not its business: BlobLifetimesRepository decides them. */
export interface BlobBytes {
  /** True when the backend expires bytes itself at the due time (Redis TTL), so reads need no index check. */
  readonly expiresNatively: boolean;
  write(hash: string, bytes: Buffer, type: string, dueMs: number): Promise<void>;
  /** Moves the native expiry (only for expiresNatively backends). */
  extend(hash: string, dueMs: number): Promise<void>;
  read(hash: string): Promise<Buffer | null>;
  open(hash: string): Promise<{ body: Readable; size: number } | null>;
  exists(hash: string): Promise<boolean>;
  delete(hash: string): Promise<void>;
  presign?(ref: BlobRef, expiresInSeconds: number): Promise<string>;
  locate(hash: string): string;
  /** Throws when the backend cannot be reached (for /health). */
  probe(): Promise<void>;
}
