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

  /**
   * 0-based place in the order jobs will start; null once the job left the queue. One shard: its rank in the fair
   * queue, exact. STREAM_SHARDS = N: each shard has its own fair queue and the workers' slots go to the shards in
   * turn (ConcurrencyBudget), so while the r jobs ahead of it in its own shard start, each other shard starts about
   * r of its own, or all it has: rank r + Σ min(queued in shard s, r). docs/job-state.md#shards gives the bound.
   */
  async rank(jobId: string): Promise<number | null> {
    const own = this.keys.forJob(jobId);
    const rank = await this.redis.zrank(own.queue, jobId);
    if (rank === null || this.keys.shardCount <= 1) return rank;
    const others = this.keys.shards.filter((k) => k.shard !== own.shard);
    const lengths = await Promise.all(others.map((k) => this.redis.zcard(k.queue)));
    return lengths.reduce((ahead, queued) => ahead + Math.min(queued, rank), rank);
  }

  /** Queued jobs over every shard. */
  async length(): Promise<number> {
    const lengths = await Promise.all(this.keys.shards.map((k) => this.redis.zcard(k.queue)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /** The first `limit` in-flight jobs of each shard, flat: job id, score, job id, score… */
  async inflight(limit: number): Promise<string[]> {
    const sets = await Promise.all(
      this.keys.shards.map((k) => this.redis.zrange(k.inflight, 0, limit - 1, 'WITHSCORES')),
    );
    return sets.flat();
  }
}
