import type { RedisClient } from '../../../redis/redis-client';
import type { StreamKeys } from '../../../streams/stream-keys';

/** How stale the floor may get before a submit reads the shards' virtual times again (N GETs, shared by callers). */
const REFRESH_MS = 250;

/**
 * With STREAM_SHARDS > 1 each shard keeps its own fair-queue virtual time, advanced as its jobs are dispatched. A
 * gpu process reading several shards starts the job with the lowest start tag first (ConcurrencyBudget), which is
 * fair across shards only while the tags compare: a shard that sat idle keeps an old virtual time, and its next
 * account would get tags far below everyone else's and take every slot until it caught up. The submit script raises
 * a shard's virtual time to this floor first: the highest virtual time this process has seen in any shard (learnt
 * from its submits' replies, and read from every shard when it is older than 250 ms: a round trip at most four times
 * a second, shared by the submits waiting for it). A floor up to 250 ms old only puts a newcomer a few jobs ahead of
 * where global fair queuing would. One shard: no floor (-1), nothing read.
 */
export class VirtualTimeFloor {
  private highest = 0;
  private readAt = 0;
  private reading?: Promise<void>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** The floor for a submit: -1 with one shard. */
  async floor(): Promise<number> {
    if (this.keys.shardCount <= 1) return -1;
    if (Date.now() - this.readAt > REFRESH_MS) await this.refresh();
    return this.highest;
  }

  /** A submit's reply: its shard's virtual time after it. */
  learn(vtime: number): void {
    if (Number.isFinite(vtime) && vtime > this.highest) this.highest = vtime;
  }

  private refresh(): Promise<void> {
    this.reading ??= Promise.all(this.keys.shards.map((k) => this.redis.get(k.queueVirtualTime)))
      .then((values) => {
        for (const v of values) this.learn(Number(v ?? 0));
        this.readAt = Date.now();
      })
      .catch(() => undefined) // a failed read keeps the floor it had; the next submit tries again
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}
