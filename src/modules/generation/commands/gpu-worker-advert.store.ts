import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/** What a gpu process tells the others (and the API's ETA, and `cli stats`) about itself. */
export interface GpuWorkerAdvert {
  /** Jobs it runs at once. */
  readonly slots: number;
  /**
   * Instances that can draw now (ETA counts each once across processes). Adverts of releases before this field
   * carry none; the ETA counts them by their slots (QueuePositionService.capacity).
   */
  readonly instances: readonly string[];
  /** Every instance it drives, up or not: what it can run (see PoolCapabilityStore). */
  readonly pool?: readonly string[];
  /** Its consumer in the `gpu` group: where peers hand the jobs only its instances can run. */
  readonly consumer?: string;
  /** Jobs that consumer held (running and waiting) when this was written: peers hand work to the least loaded. */
  readonly held?: number;
  readonly expiresAt: number;
}

/**
 * `gpu:workers`: one advert per live gpu process (field `<INSTANCE_NAME>:<random>`), rewritten every few seconds by
 * the gpu role, read by its peers (hand-offs) and by the API's ETA. Owned here, beside the ETA, so both roles reach
 * it through the generation module's index.
 */
@Injectable()
export class GpuWorkerAdvertStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async publish(field: string, advert: GpuWorkerAdvert): Promise<void> {
    await this.redis.hset(this.keys.gpuWorkers, field, JSON.stringify(advert));
  }

  async remove(field: string): Promise<void> {
    await this.redis.hdel(this.keys.gpuWorkers, field);
  }

  /** Every advert as written (unparsed, expired ones included): the ETA judges each itself. */
  all(): Promise<string[]> {
    return this.redis.hvals(this.keys.gpuWorkers);
  }

  /** The adverts not yet expired at `now`. */
  async live(now = Date.now()): Promise<GpuWorkerAdvert[]> {
    return (await this.all()).map(parseAdvert).filter((a): a is GpuWorkerAdvert => !!a && a.expiresAt > now);
  }
}

/** One advert as written, or undefined when unreadable (counted as no worker). */
export function parseAdvert(raw: string): GpuWorkerAdvert | undefined {
  try {
    const advert = JSON.parse(raw) as GpuWorkerAdvert;
    return typeof advert.slots === 'number' && typeof advert.expiresAt === 'number' ? advert : undefined;
  } catch {
    return undefined;
  }
}
