import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamTail } from '../../../streams/stream-tail';
import { StreamTailFactory } from '../../../streams/stream-tail.factory';

/**
 * How long a cancel may wait to be read with the events around it. A cancel is a person's click: 25 ms is
 * nothing to them, while reading every event of a busy pipeline one XREAD at a time costs Redis a read per event.
 */
const CANCEL_READ_BATCH_MS = 25;

/**
 * Cancel fan-out for the gpu role: every gpu process tails `jobs:events` (no group, so each sees every
 * `job.cancel-requested`) and aborts the job if it is running here. Its own tail, of the events stream only:
 * the shared tail also reads the progress stream, which a gpu process never needs.
 */
@Injectable()
export class CancelRegistryService implements OnModuleInit, OnApplicationShutdown {
  private readonly running = new Map<string, AbortController>();
  private readonly tail: StreamTail;

  constructor(tails: StreamTailFactory, keys: StreamKeys, @Inject(ROOT_LOGGER) log: Logger) {
    this.tail = tails.open(
      keys.shards.map((s) => s.events),
      log,
      { coalesceMs: CANCEL_READ_BATCH_MS },
    );
  }

  onModuleInit(): void {
    this.tail.subscribe(({ envelope }) => {
      if (envelope.type === 'job.cancel-requested') this.running.get(envelope.jobId)?.abort(new JobCancelledSignal());
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.tail.close();
  }

  /** Registers a running job; the returned controller aborts with JobCancelledSignal on cancel. */
  register(jobId: string): { controller: AbortController; release: () => void } {
    const controller = new AbortController();
    this.running.set(jobId, controller);
    return {
      controller,
      release: () => {
        if (this.running.get(jobId) === controller) this.running.delete(jobId);
      },
    };
  }
}

export class JobCancelledSignal extends Error {
  constructor() {
    super('job cancelled by request');
    this.name = 'JobCancelledSignal';
  }
}
