import type { BlobRef } from '../streams/job-event.types';
import { sleep } from '../common/sleep.util';
import type { BlobBytes } from './blob-bytes';
import { BlobStoreFullError } from './blob-errors';
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
  /** Deletions that failed are retried by the sweeper; this only reports them. */
  onDeleteError?: (hash: string, err: unknown) => void;
}

/** A put that meets its own content being deleted waits for the deletion; bounded (deletes time out sooner). */
const DELETING_RETRY_MS = 50;
const DELETING_MAX_WAITS = 200;
const MAX_PRESIGN_SECONDS = 3600;

/**
 * Every backend behind one lifecycle: holds in Redis decide how long bytes live (BlobLifetimesRepository), the
 * backend only stores them. A blob goes when its last hold is released or expires; the sweeper deletes what
 * expired for backends without native expiry (folder, bucket).
 */
export class LifecycledBlobStore implements BlobStore {
  readonly backend: BlobBackendName;

  constructor(
    private readonly lifetimes: BlobLifetimesRepository,
    private readonly bytes: BlobBytes,
    private readonly options: LifecycledBlobStoreOptions,
  ) {
    this.backend = options.backend;
  }

  async put(bytes: Buffer, type: string, hold: BlobHold): Promise<BlobRef> {
    const ref = blobRefFor(bytes, type);
    const expiresAt = Date.now() + hold.ttlSeconds * 1000;
    for (let wait = 0; wait <= DELETING_MAX_WAITS; wait++) {
      const outcome = await this.lifetimes.acquire(ref.hash, hold.holder, expiresAt, ref.size, {
        maxBytes: this.options.maxBytes,
      });
      if (outcome.kind === 'full') throw new BlobStoreFullError(outcome.storedBytes, this.options.maxBytes);
      if (outcome.kind === 'deleting') {
        await sleep(DELETING_RETRY_MS);
        continue;
      }
      if (outcome.kind !== 'held') break;
      try {
        await this.store(ref, bytes, outcome.isNew, outcome.dueMs);
      } catch (err) {
        await this.release(ref.hash, hold.holder).catch(() => undefined);
        throw err;
      }
      return ref;
    }
    throw new Error(`blob ${ref.hash.slice(0, 12)}… stayed in deletion; put abandoned`);
  }

  async retain(hash: string, hold: BlobHold): Promise<boolean> {
    if (!BLOB_HASH_PATTERN.test(hash)) return false;
    const outcome = await this.lifetimes.acquire(hash, hold.holder, Date.now() + hold.ttlSeconds * 1000, 0, {
      mustExist: true,
    });
    if (outcome.kind !== 'held') return false;
    if (this.bytes.expiresNatively) await this.bytes.extend(hash, outcome.dueMs);
    if (await this.bytes.exists(hash)) return true;
    await this.release(hash, hold.holder);
    return false;
  }

  async release(hash: string, holder: string): Promise<void> {
    if (!BLOB_HASH_PATTERN.test(hash)) return;
    const outcome = await this.lifetimes.release(hash, holder);
    if (outcome.kind === 'delete') await this.deleteBytes(hash);
    else if (outcome.kind === 'held' && this.bytes.expiresNatively) await this.bytes.extend(hash, outcome.dueMs);
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
    return (await this.alive(hash)) && (await this.bytes.exists(hash));
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

  async sweepExpired(limit = 100): Promise<number> {
    const now = Date.now();
    let deleted = 0;
    for (const hash of await this.lifetimes.due(now, limit)) {
      const outcome = await this.lifetimes.release(hash, undefined, now);
      if (outcome.kind === 'delete' && (await this.deleteBytes(hash))) deleted++;
    }
    return deleted;
  }

  async usage(): Promise<BlobUsage> {
    const totals = await this.lifetimes.totals();
    return {
      backend: this.backend,
      ...totals,
      ...(this.options.maxBytes > 0 ? { maxBytes: this.options.maxBytes } : {}),
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

  private async store(ref: BlobRef, bytes: Buffer, isNew: boolean, dueMs: number): Promise<void> {
    // Known content is written again only when its bytes are missing (a racing first put, or a lost object).
    if (!isNew) {
      if (this.bytes.expiresNatively) await this.bytes.extend(ref.hash, dueMs);
      if (await this.bytes.exists(ref.hash)) return;
    }
    await this.bytes.write(ref.hash, bytes, ref.type, dueMs);
  }

  /** True when the bytes are gone and the index forgot them; false leaves the blob due for the next sweep. */
  private async deleteBytes(hash: string): Promise<boolean> {
    try {
      await this.bytes.delete(hash);
    } catch (err) {
      this.options.onDeleteError?.(hash, err);
      // The blob stays due (the next sweep retries); a put of the same content need not wait for the marker.
      await this.lifetimes.clearDeleting(hash).catch(() => undefined);
      return false;
    }
    await this.lifetimes.forget(hash);
    return true;
  }
}
