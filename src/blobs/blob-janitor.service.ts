import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { ROOT_LOGGER } from '../common/root-logger';
import { BLOB_STORE, type BlobStore } from './blob-store';

/** How often every process sweeps; expiry is exact to about this much. */
export const BLOB_SWEEP_INTERVAL_MS = 30_000;
const BATCH = 100;
const MAX_BATCHES_PER_SWEEP = 20;

/**
 * Deletes blobs whose holds all expired (API results past BLOB_TTL_SECONDS, inputs of jobs that never ended) or
 * were released (inputs of finished jobs, delivered Telegram results).
 * Runs in every process: the lifetimes script decides each deletion once, so replicas never double-count.
 */
@Injectable()
export class BlobJanitorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<number>;
  private readonly log: Logger;

  constructor(
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(ROOT_LOGGER) root: Logger,
  ) {
    this.log = root.child({ component: 'blob-janitor' });
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), BLOB_SWEEP_INTERVAL_MS);
    this.timer.unref();
    // A released blob goes within a moment, not at the next tick (releases themselves never wait on the backend).
    this.blobs.onSweepWanted(() => void this.sweep());
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One sweep (bounded); a sweep already under way is joined, not doubled. */
  sweep(): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    this.running ??= this.sweepBatches()
      .catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'blob sweep failed; next one retries');
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweepBatches(): Promise<number> {
    let total = 0;
    for (let i = 0; i < MAX_BATCHES_PER_SWEEP; i++) {
      const deleted = await this.blobs.sweepExpired(BATCH);
      total += deleted;
      if (deleted < BATCH) break;
    }
    if (total > 0) this.log.info({ deleted: total }, 'expired blobs deleted');
    return total;
  }
}
