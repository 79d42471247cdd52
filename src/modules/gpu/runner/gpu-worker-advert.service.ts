import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { GENERATION_EXECUTOR, type GenerationExecutor } from './generation-executor';

const ADVERT_INTERVAL_MS = 5_000;

/**
 * Advertises this process's job slots and the instances it draws on in `gpu:workers` (with an expiry), so ETAs
 * count the instances that really draw at once.
 */
@Injectable()
export class GpuWorkerAdvertService implements OnModuleInit, OnApplicationShutdown {
  private readonly field = randomUUID().slice(0, 8);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(GENERATION_EXECUTOR) private readonly executor: GenerationExecutor,
    private readonly keys: StreamKeys,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.advertise();
    this.timer = setInterval(() => void this.advertise(), ADVERT_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.hdel(this.keys.gpuWorkers, this.fieldName()).catch(() => 0);
  }

  private fieldName(): string {
    return `${this.config.instanceName}:${this.field}`;
  }

  private async advertise(): Promise<void> {
    const slots = Math.min(this.config.gpuConcurrency, this.executor.capacity());
    // The instances by id, so that processes sharing instances count each once: only they draw in parallel.
    const instances = slots > 0 ? this.executor.drawingInstances() : [];
    const advert = JSON.stringify({ slots, instances, expiresAt: Date.now() + ADVERT_INTERVAL_MS * 3 });
    await this.redis.hset(this.keys.gpuWorkers, this.fieldName(), advert).catch(() => 0);
  }
}
