import type { BlobRef, JobInputValue } from '../streams/job-event.types';
import { blobHolders, type BlobStore } from './blob-store';

/** The image inputs of a job request, by input name. */
export function imageInputs(inputs: Record<string, JobInputValue>): [string, BlobRef][] {
  return Object.entries(inputs).flatMap(([name, v]) => (typeof v === 'object' && v !== null ? [[name, v.blob]] : []));
}

/**
 * A new job (a re-drive) reusing another job's images holds them itself, so they outlive the original's hold.
 * Returns the names of inputs no longer stored (nothing is held then).
 */
export async function retainJobInputs(
  blobs: BlobStore,
  jobId: string,
  inputs: Record<string, JobInputValue>,
  ttlSeconds: number,
): Promise<string[]> {
  const holder = blobHolders.input(jobId);
  const missing: string[] = [];
  for (const [name, ref] of imageInputs(inputs)) {
    if (!(await blobs.retain(ref.hash, { holder, ttlSeconds }))) missing.push(name);
  }
  if (missing.length > 0) await releaseJobInputs(blobs, jobId, inputs);
  return missing;
}

/** Drops a job's holds on its images (idempotent); the bytes go with their last hold. */
export async function releaseJobInputs(
  blobs: BlobStore,
  jobId: string,
  inputs: Record<string, JobInputValue>,
): Promise<void> {
  for (const [, ref] of imageInputs(inputs)) await blobs.release(ref.hash, blobHolders.input(jobId));
}
