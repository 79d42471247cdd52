import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ROOT_LOGGER } from '../../../common/root-logger';
import type { Logger } from '../../../common/logger';
import { errorMessage } from '../../../streams/stream-errors';
import { PoolCapabilityStore } from '../../capabilities';
import { InstancePool } from './instance-pool';

const ADVERT_INTERVAL_MS = 5_000;

/**
 * Publishes what each instance of this process's pool can run (and whether it is up) in `gpu:capabilities`, with
 * an expiry: every few seconds, and at once when the pool reports a change (an instance read, admitted or
 * quarantined). The API reads it at submit; it runs in another process.
 */
@Injectable()
export class CapabilityAdvertService implements OnModuleInit, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private publishing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: InstancePool,
    private readonly store: PoolCapabilityStore,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    this.pool.onChange(() => void this.publish());
    await this.publish();
    this.timer = setInterval(() => void this.publish(), ADVERT_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.publishing;
  }

  /** Serialized, so a slow write never lands after a newer one. */
  publish(): Promise<void> {
    this.publishing = this.publishing.then(() => this.write());
    return this.publishing;
  }

  private async write(): Promise<void> {
    const expiresAt = Date.now() + ADVERT_INTERVAL_MS * 3;
    const adverts = this.pool.all().map((i) => ({
      instanceId: i.id,
      state: i.state,
      capabilities: i.capabilities ?? null,
      expiresAt,
    }));
    await this.store.publish(adverts).catch((err: unknown) => {
      this.log.warn({ err: errorMessage(err) }, 'cannot publish instance capabilities');
    });
  }
}
