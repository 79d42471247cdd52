import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobRef } from '../streams/job-event.types';

/**
 * Who keeps a blob alive, and until when. A blob lives while any of its holds is unreleased and unexpired;
 * content addressing means two jobs with the same image share the bytes but not the hold.
 */
export interface BlobHold {
  holder: string;
  ttlSeconds: number;
}

/** Holder names, in one place: a job's inputs and its results are held (and released) separately. */
export const blobHolders = {
  input: (jobId: string): string => `in:${jobId}`,
  result: (jobId: string): string => `out:${jobId}`,
};

export interface BlobStream {
  body: Readable;
  size: number;
}

export interface BlobUsage {
  backend: BlobBackendName;
  /** Bytes of live blobs, as the store's own index counts them. */
  bytes: number;
  blobs: number;
  /** BLOB_REDIS_MAX_BYTES for the Redis backend; none for the others. */
  maxBytes?: number;
  /**
   * With maxBytes: the fullest shard's bytes over its share of the cap (BLOB_REDIS_MAX_BYTES ÷ STREAM_SHARDS; with
   * one shard, bytes ÷ maxBytes). A put is checked against its shard's share, so this is what says "full".
   */
  fullest?: number;
}

export type BlobBackendName = 'redis' | 'fs' | 's3';

/** Bytes of results and uploaded inputs, addressed by content hash. Events carry BlobRefs, never bytes. */
export interface BlobStore {
  readonly backend: BlobBackendName;
  /** Stores the bytes (once per content) and adds the hold. BlobStoreFullError / BlobStoreUnavailableError. */
  put(bytes: Buffer, type: string, hold: BlobHold): Promise<BlobRef>;
  /** Adds a hold to a blob that is still stored; false when it is gone. */
  retain(hash: string, hold: BlobHold): Promise<boolean>;
  /** Drops one hold; the bytes go (by the sweeper, soon) when the last hold does. Idempotent; never waits on the backend. */
  release(hash: string, holder: string): Promise<void>;
  /** null when the blob expired or never existed. */
  get(hash: string): Promise<Buffer | null>;
  /** The bytes as a stream (for HTTP), or null when expired. */
  open(hash: string): Promise<BlobStream | null>;
  exists(hash: string): Promise<boolean>;
  /** A time-limited URL a client can fetch the bytes from directly (S3 with BLOB_S3_PRESIGN), else undefined. */
  presignedUrl(ref: BlobRef): Promise<string | undefined>;
  /** True when results are served by presigned URL (then presignedUrl's undefined means: expired). */
  readonly presigns: boolean;
  /** Deletes blobs whose every hold has expired or was released; returns how many went. Safe in every process. */
  sweepExpired(limit?: number): Promise<number>;
  /** Called (once per release that left a blob due) so the sweeper runs soon rather than at its next tick. */
  onSweepWanted(listener: () => void): void;
  usage(): Promise<BlobUsage>;
  /** Throws (BlobStoreUnavailableError or the backend's error) when the bytes' backend is unreachable. */
  probe(): Promise<void>;
  /** Where an operator finds it (file path, Redis key or s3:// URL), for logs and the demo. */
  locate(hash: string): string;
}

export const BLOB_STORE = Symbol('BLOB_STORE');

export function blobRefFor(bytes: Buffer, type: string): BlobRef {
  return { hash: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, type };
}

export const BLOB_HASH_PATTERN = /^[a-f0-9]{64}$/;
