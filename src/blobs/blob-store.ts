import { createHash } from 'node:crypto';
import type { BlobRef } from '../streams/job-event.types';

/** Bytes of results and uploaded inputs, addressed by content hash. Events carry BlobRefs, never bytes. */
export interface BlobStore {
  put(bytes: Buffer, type: string): Promise<BlobRef>;
  /** null when the blob expired or never existed. */
  get(hash: string): Promise<Buffer | null>;
  /** Where an operator finds it (file path or Redis key), for logs and the demo. */
  locate(hash: string): string;
}

export const BLOB_STORE = Symbol('BLOB_STORE');

export function blobRefFor(bytes: Buffer, type: string): BlobRef {
  return { hash: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, type };
}

export const BLOB_HASH_PATTERN = /^[a-f0-9]{64}$/;
