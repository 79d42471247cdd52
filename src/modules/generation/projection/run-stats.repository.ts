import { Inject, Injectable } from '@nestjs/common';
import { RUN_STATS_EMA } from '../../../redis/scripts';
import type Redis from 'ioredis';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/** Assumed run time before any job has finished: a typical SDXL image on one GPU. */
export const DEFAULT_RUN_MS = 15_000;

@Injectable()
export class RunStatsRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async recordRun(runMs: number): Promise<void> {
    await RUN_STATS_EMA.run(this.redis, [this.keys.runStats], [String(Math.max(0, Math.round(runMs)))]);
  }

  async averageRunMs(): Promise<number> {
    const value = Number(await this.redis.hget(this.keys.runStats, 'avgRunMs'));
    return Number.isFinite(value) && value > 0 ? value : DEFAULT_RUN_MS;
  }
}
