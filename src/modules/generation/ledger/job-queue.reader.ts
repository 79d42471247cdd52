import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/**
 * Reads of the fair queue (`queue`, ranked in start order) and of the in-flight set (`queue:inflight`: −taken ms
 * while a job waits for an instance, +start ms while it draws) for positions and ETAs. Only the ledger's scripts
 * write them.
 */
@Injectable()
export class JobQueueReader {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** 0-based place in the queue; null once the job left it. */
  rank(jobId: string): Promise<number | null> {
    return this.redis.zrank(this.keys.queue, jobId);
  }

  length(): Promise<number> {
    return this.redis.zcard(this.keys.queue);
  }

  /** The first `limit` in-flight jobs, flat: job id, score, job id, score… */
  inflight(limit: number): Promise<string[]> {
    return this.redis.zrange(this.keys.inflight, 0, limit - 1, 'WITHSCORES');
  }
}
