import { randomUUID } from 'node:crypto';
import type { BlobRef } from '../streams/job-event.types';
import { sleep } from '../common/sleep.util';
import type { BlobBytes } from './blob-bytes';
import { BlobStoreFullError, BlobStoreUnavailableError } from './blob-errors';
import type { BlobLifetimesRepository } from './blob-lifetimes.repository';
import {
  BLOB_HASH_PATTERN,
  blobRefFor,
  type BlobBackendName,
  type BlobHold,
  type BlobStore,
  type BlobStream,
  type BlobUsage,
} from './blob-store';

export interface LifecycledBlobStoreOptions {
  backend: BlobBackendName;
  /** Cap on stored bytes (0: none). Set for the Redis backend, where bytes are Redis memory. */
  maxBytes: number;
  /** BLOB_S3_PRESIGN: results are served by redirect to a time-limited URL instead of through the API. */
  presign: boolean;
  /** Known content older than this is written again (a bucket lifecycle rule counts from the last write). */
  rewriteAfterMs: number;
  /** Deletions that failed are retried by the next sweep; this only reports them. */
  onDeleteError?: (hash: string, err: unknown) => void;
}

const DELETING_RETRY_MS = 50;
const MAX_PRESIGN_SECONDS = 3600;
/** Where a release left a blob due, the next sweep runs this soon (deletes never block the releasing caller). */
const SWEEP_SOON_MS = 250;

/**
 * Every backend behind one lifecycle: holds in Redis decide how long bytes live (BlobLifetimesRepository), the
 * backend only stores them. A blob is due when its last hold is released or expires; the sweeper deletes due
 * bytes under a marker that makes a put of the same content wait, so bytes someone holds are never deleted.
 */
export class LifecycledBlobStore implements BlobStore {
  readonly backend: BlobBackendName;
  private sweepListener?: () => void;
  private readonly markerMs: number;

  constructor(
    private readonly lifetimes: BlobLifetimesRepository,
    private readonly bytes: BlobBytes,
    private readonly options: LifecycledBlobStoreOptions,
  ) {
    this.backend = options.backend;
    this.markerMs = bytes.maxDeleteMs + 5_000;
  }

  async put(bytes: Buffer, type: string, hold: BlobHold): Promise<BlobRef> {
    const ref = blobRefFor(bytes, type);
    const deadline = Date.now() + this.markerMs;
    for (;;) {
      const outcome = await this.lifetimes.acquire(ref.hash, hold.holder, hold.ttlSeconds * 1000, ref.size, {
        maxBytes: this.options.maxBytes,
        ...(this.bytes.inIndexRedis ? { redisBytes: bytes } : {}),
      });
      if (outcome.kind === 'full')
        throw new BlobStoreFullError(outcome.storedBytes, this.options.maxBytes, outcome.capBytes);
      if (outcome.kind === 'missing') throw new Error('unreachable: put never asks mustExist');
      if (outcome.kind === 'held') {
        if (outcome.stored) return ref;
        try {
          await this.store(ref, bytes, outcome.isNew);
        } catch (err) {
          await this.release(ref.hash, hold.holder).catch(() => undefined);
          throw err;
        }
        return ref;
      }
      // The same content is being deleted right now: its bytes are gone in a moment, then we write them anew.
      if (Date.now() > deadline) {
        throw new BlobStoreUnavailableError('upload', new Error('the same content stayed in deletion'));
      }
      await sleep(DELETING_RETRY_MS);
    }
  }

  async retain(hash: string, hold: BlobHold): Promise<boolean> {
    if (!BLOB_HASH_PATTERN.test(hash)) return false;
    const outcome = await this.lifetimes.acquire(hash, hold.holder, hold.ttlSeconds * 1000, 0, { mustExist: true });
    if (outcome.kind !== 'held') return false;
    if ((await this.bytes.writtenAt(hash)) !== null) return true;
    await this.release(hash, hold.holder);
    return false;
  }

  async release(hash: string, holder: string): Promise<void> {
    if (!BLOB_HASH_PATTERN.test(hash)) return;
    if ((await this.lifetimes.release(hash, holder)) === 'due') this.sweepSoon();
  }

  async get(hash: string): Promise<Buffer | null> {
    if (!(await this.alive(hash))) return null;
    return this.bytes.read(hash);
  }

  async open(hash: string): Promise<BlobStream | null> {
    if (!(await this.alive(hash))) return null;
    return this.bytes.open(hash);
  }

  async exists(hash: string): Promise<boolean> {
    return (await this.alive(hash)) && (await this.bytes.writtenAt(hash)) !== null;
  }

  async presignedUrl(ref: BlobRef): Promise<string | undefined> {
    if (!this.options.presign || !this.bytes.presign) return undefined;
    const due = await this.lifetimes.dueAt(ref.hash);
    const seconds = due === null ? 0 : Math.floor((due - Date.now()) / 1000);
    if (seconds <= 0) return undefined;
    return this.bytes.presign(ref, Math.min(seconds, MAX_PRESIGN_SECONDS));
  }

  get presigns(): boolean {
    return this.options.presign && this.bytes.presign !== undefined;
  }

  /** Deletes the bytes of due blobs; returns how many went. Safe in every process at once (claims decide). */
  async sweepExpired(limit = 100): Promise<number> {
    let deleted = 0;
    for (const hash of await this.lifetimes.due(limit)) {
      if (await this.deleteIfDue(hash)) deleted++;
    }
    return deleted;
  }

  /** The janitor listens here: a release that left a blob due asks for a sweep soon. */
  onSweepWanted(listener: () => void): void {
    this.sweepListener = listener;
  }

  async usage(): Promise<BlobUsage> {
    const { bytes, blobs, shardMaxBytes } = await this.lifetimes.totals();
    const max = this.options.maxBytes;
    return {
      backend: this.backend,
      bytes,
      blobs,
      ...(max > 0 ? { maxBytes: max, fullest: shardMaxBytes / this.lifetimes.shardCap(max) } : {}),
    };
  }

  probe(): Promise<void> {
    return this.bytes.probe();
  }

  locate(hash: string): string {
    return this.bytes.locate(hash);
  }

  /** Reads skip the index where the backend expires bytes itself (Redis TTL): one round trip, not two. */
  private alive(hash: string): Promise<boolean> {
    if (!BLOB_HASH_PATTERN.test(hash)) return Promise.resolve(false);
    return this.bytes.expiresNatively ? Promise.resolve(true) : this.lifetimes.isAlive(hash);
  }

  /**
   * Known content is written again when its bytes are missing (a racing first put, a lost object) or older than
   * rewriteAfterMs, so a bucket lifecycle rule of 2 × BLOB_TTL_SECONDS never removes bytes a hold still needs.
   */
  private async store(ref: BlobRef, bytes: Buffer, isNew: boolean): Promise<void> {
    if (!isNew) {
      const writtenAt = await this.bytes.writtenAt(ref.hash);
      if (writtenAt !== null && Date.now() - writtenAt < this.options.rewriteAfterMs) return;
    }
    await this.bytes.write(ref.hash, bytes, ref.type);
  }

  private async deleteIfDue(hash: string): Promise<boolean> {
    const token = randomUUID();
    if ((await this.lifetimes.claimDelete(hash, token, this.markerMs)) !== 'delete') return false;
    try {
      await this.bytes.delete(hash);
    } catch (err) {
      this.options.onDeleteError?.(hash, err);
      await this.lifetimes.unclaim(hash, token).catch(() => undefined);
      return false;
    }
    return this.lifetimes.forget(hash, token);
  }

  private sweepSoon(): void {
    const listener = this.sweepListener;
    if (listener) setTimeout(listener, SWEEP_SOON_MS).unref();
  }
}
