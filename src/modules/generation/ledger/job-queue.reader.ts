import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/** A queue score is start tag × this + ticket mod this (FAIR_SCORE_LUA in the ledger's scripts). */
const FAIR_SCORE_TAG_UNIT = 1e7;

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
   * queue, exact. STREAM_SHARDS = N: each shard ranks its own fair queue, and a gpu process starts the lowest start
   * tag held by any shard first, the tags sharing one virtual time (VirtualTimeFloor). So the jobs ahead are its rank
   * in its shard plus, from every other shard, the queued jobs with a lower tag and, of those with the same tag
   * (equal tags go to the shards in turn), as many as it has ahead with that tag in its own shard, plus one.
   * docs/fair-queue.md#shards gives the bound.
   */
  async rank(jobId: string): Promise<number | null> {
    const own = this.keys.forJob(jobId);
    if (this.keys.shardCount <= 1) return this.redis.zrank(own.queue, jobId);
    const [rank, score] = await Promise.all([this.redis.zrank(own.queue, jobId), this.redis.zscore(own.queue, jobId)]);
    if (rank === null || score === null) return null;
    // The score is start tag × 10⁷ + ticket: another shard's tickets do not compare, its tags do.
    const tag = Math.floor(Number(score) / FAIR_SCORE_TAG_UNIT) * FAIR_SCORE_TAG_UNIT;
    const next = tag + FAIR_SCORE_TAG_UNIT;
    const others = this.keys.shards.filter((k) => k.shard !== own.shard);
    // One round trip: its own shard's jobs with a lower tag, and each other shard's below and up to its tag.
    const [lowerOwn, ...counts] = await Promise.all([
      this.redis.zcount(own.queue, '-inf', `(${tag}`),
      ...others.flatMap((k) => [
        this.redis.zcount(k.queue, '-inf', `(${tag}`),
        this.redis.zcount(k.queue, '-inf', `(${next}`),
      ]),
    ]);
    const tiedAhead = rank - lowerOwn;
    let ahead = rank;
    for (let i = 0; i + 1 < counts.length; i += 2) {
      const [lower, upToTag] = [counts[i], counts[i + 1]];
      ahead += lower + Math.min(upToTag - lower, tiedAhead + 1);
    }
    return ahead;
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
