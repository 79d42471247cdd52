import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { errorMessage } from '../../../streams/stream-errors';
import { JobLedger } from '../../generation';

/** How often a gpu process tops the request streams up from the fair queue on its own. */
const PUMP_INTERVAL_MS = 1_000;

/**
 * The fair queue's safety net in every gpu process: submits and claims dispatch queued jobs into the request
 * streams as they go (docs/fair-queue.md), and this tops the streams up once a second besides, so a queue that
 * no submit or claim is moving (workers that came back after all were gone, QUEUE_DISPATCH_AHEAD raised) still
 * drains. One small script call a second per gpu process; nothing when the queue is empty.
 */
@Injectable()
export class QueuePumpService implements OnModuleInit, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly ledger: JobLedger,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
  ) {}

  onModuleInit(): void {
    void this.pump();
    this.timer = setInterval(() => void this.pump(), PUMP_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async pump(): Promise<void> {
    try {
      const moved = await this.ledger.dispatchQueued();
      if (moved > 0) this.log.debug({ moved }, 'dispatched queued jobs');
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'queue pump failed; next round retries');
    }
  }
}
