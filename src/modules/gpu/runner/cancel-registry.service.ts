import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { StreamTail } from '../../../streams/stream-tail';

/**
 * Cancel fan-out for the gpu role: every gpu process tails `jobs:events` (no group, so each sees every
 * `job.cancel-requested`) and aborts the job if it is running here.
 */
@Injectable()
export class CancelRegistryService implements OnModuleInit, OnApplicationShutdown {
  private readonly running = new Map<string, AbortController>();
  private unsubscribe?: () => void;

  constructor(private readonly tail: StreamTail) {}

  onModuleInit(): void {
    this.unsubscribe = this.tail.subscribe(({ envelope }) => {
      if (envelope.type === 'job.cancel-requested') this.running.get(envelope.jobId)?.abort(new JobCancelledSignal());
    });
  }

  onApplicationShutdown(): void {
    this.unsubscribe?.();
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
