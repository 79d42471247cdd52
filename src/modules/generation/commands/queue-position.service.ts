import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { RunStatsRepository } from '../projection/run-stats.repository';

export interface QueuePosition {
  /** 1 = next to run; undefined once a worker has taken the job. */
  position?: number;
  /** Seconds until the job is expected to finish; null when no worker is online to estimate from. */
  etaSeconds: number | null;
}

/** A live gpu worker's advertisement in `gpu:workers`: how many jobs it runs at once, until when it is valid. */
export interface GpuWorkerAdvert {
  slots: number;
  expiresAt: number;
}

/**
 * Queue position is the job's rank in the ticket-ordered queue set (exact, and it only ever falls: jobs ahead
 * leave, new ones join behind). ETA = (jobs ahead + this one) × average run time ÷ parallel GPU slots online.
 */
@Injectable()
export class QueuePositionService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: StreamKeys,
    private readonly runStats: RunStatsRepository,
  ) {}

  async positionOf(jobId: string): Promise<QueuePosition> {
    const [rank, avgRunMs, slots] = await Promise.all([
      this.redis.zrank(this.keys.queue, jobId),
      this.runStats.averageRunMs(),
      this.liveSlots(),
    ]);
    if (rank === null) return { etaSeconds: slots > 0 ? Math.ceil(avgRunMs / 1000) : null };
    const position = rank + 1;
    // Jobs ahead run `slots` at a time; this one finishes after its own run.
    const waves = Math.ceil(position / Math.max(1, slots));
    return { position, etaSeconds: slots > 0 ? Math.ceil((waves * avgRunMs) / 1000) : null };
  }

  async queueLength(): Promise<number> {
    return this.redis.zcard(this.keys.queue);
  }

  async liveSlots(now = Date.now()): Promise<number> {
    const adverts = await this.redis.hvals(this.keys.gpuWorkers);
    let slots = 0;
    for (const raw of adverts) {
      try {
        const advert = JSON.parse(raw) as GpuWorkerAdvert;
        if (advert.expiresAt > now) slots += advert.slots;
      } catch {
        continue;
      }
    }
    return slots;
  }
}
