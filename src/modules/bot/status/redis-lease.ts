import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../../../redis/redis-client';
import { sleep } from '../../../common/sleep.util';
import { LEASE_RELEASE, LEASE_TAKE } from '../../../redis/scripts';

/**
 * A Redis lease with an owner token: taking it again as the same owner renews it, nobody else can take it until
 * it expires or is released. Used as a sticky ownership (who refreshes a job) and as a mutex (who edits now).
 */
export class RedisLease {
  constructor(
    private readonly redis: RedisClient,
    readonly owner: string = randomUUID(),
  ) {}

  async take(key: string, ttlMs: number): Promise<boolean> {
    return (await LEASE_TAKE.run(this.redis, [key], [this.owner, String(ttlMs)])) === null;
  }

  async release(key: string): Promise<void> {
    await LEASE_RELEASE.run(this.redis, [key], [this.owner]);
  }

  /**
   * Runs `task` holding `key` as a mutex: waits up to `waitMs` for it (0: one try). Returns undefined when the
   * mutex was busy throughout. Each call uses a fresh token, so two tasks of one process exclude each other too.
   */
  static async withMutex<T>(
    redis: RedisClient,
    key: string,
    options: { ttlMs: number; waitMs: number; signal?: AbortSignal },
    task: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const lease = new RedisLease(redis);
    const deadline = Date.now() + options.waitMs;
    for (let round = 0; ; round++) {
      if (await lease.take(key, options.ttlMs)) break;
      if (Date.now() >= deadline || options.signal?.aborted || round > 10_000) return { ran: false };
      await sleep(Math.min(50 + round * 10, 250), options.signal);
    }
    // Held as a short lease renewed while the task runs: a holder killed with -9 frees it within one TTL, not
    // after the longest a task could take.
    const renewal = setInterval(() => void lease.take(key, options.ttlMs).catch(() => false), options.ttlMs / 3);
    renewal.unref();
    try {
      return { ran: true, value: await task() };
    } finally {
      clearInterval(renewal);
      await lease.release(key).catch(() => undefined);
    }
  }
}
