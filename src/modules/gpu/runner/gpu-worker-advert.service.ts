import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { ConsumerDirectory } from '../../../streams/consumer-directory';
import { GENERATION_EXECUTOR, type GenerationExecutor } from './generation-executor';
import { GpuWorkerAdvertStore } from '../../generation';

const ADVERT_INTERVAL_MS = 5_000;

/**
 * Advertises this process's job slots, the instances it draws on and its `gpu` consumer in `gpu:workers` (with an
 * expiry), so ETAs count the instances that really draw at once and peers know where to hand a job they cannot run.
 */
@Injectable()
export class GpuWorkerAdvertService implements OnModuleInit, OnApplicationShutdown {
  private readonly field = randomUUID().slice(0, 8);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(GENERATION_EXECUTOR) private readonly executor: GenerationExecutor,
    private readonly adverts: GpuWorkerAdvertStore,
    private readonly consumers: ConsumerDirectory,
  ) {}

  async onModuleInit(): Promise<void> {
    // The consumer is leased after the modules start, and leaves first at shutdown: advertised again at once.
    this.consumers.onChange((group) => {
      if (group === 'gpu') void this.advertise();
    });
    await this.advertise();
    this.timer = setInterval(() => void this.advertise(), ADVERT_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.adverts.remove(this.fieldName()).catch(() => 0);
  }

  private fieldName(): string {
    return `${this.config.instanceName}:${this.field}`;
  }

  private async advertise(): Promise<void> {
    const slots = Math.min(this.config.gpuConcurrency, this.executor.capacity());
    // The instances by id, so that processes sharing instances count each once: only they draw in parallel.
    const instances = slots > 0 ? this.executor.drawingInstances() : [];
    const consumer = this.consumers.get('gpu');
    await this.adverts
      .publish(this.fieldName(), {
        slots,
        instances,
        pool: this.executor.poolInstances(),
        ...(consumer ? { consumer: consumer.name, held: consumer.held() } : {}),
        expiresAt: Date.now() + ADVERT_INTERVAL_MS * 3,
      })
      .catch(() => undefined);
  }
}
