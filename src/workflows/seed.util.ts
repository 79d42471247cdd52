import { createHash, randomBytes } from 'node:crypto';

/**
 * Largest seed we generate. ComfyUI accepts up to 2^64-1, but the prompt travels as JSON through JS,
 * where integers above 2^53-1 silently lose precision.
 */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** A uniformly random seed in 0..MAX_SEED (53 random bits). */
export function randomSeed(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n);
}

/**
 * Seeds derived from `key` (e.g. the job id): the n-th call always returns the same value for the same key.
 * Pass as `seedSource` when a re-run after a crash or retry should reproduce the same image.
 */
export function deterministicSeedSource(key: string): () => number {
  let calls = 0;
  return () => {
    const digest = createHash('sha256').update(`${key}\u0000${calls++}`).digest();
    return Number(digest.readBigUInt64BE() >> 11n);
  };
}
