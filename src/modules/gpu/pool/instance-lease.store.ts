import { randomUUID } from 'node:crypto';
import { INSTANCE_SLOT_ACQUIRE, INSTANCE_SLOT_ACQUIRE_AFFINE } from '../../../redis/scripts';
import type { RedisClient } from '../../../redis/redis-client';

export interface InstanceLease {
  id: string;
  key: string;
}

export class InstanceLeaseStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyFor: (instanceId: string) => string,
    private readonly ttlMs: number,
    private readonly depth: number,
  ) {}

  /** Takes a slot on the least-loaded candidate (in the given preference order); null when all are full. */
  async acquire(
    candidates: readonly string[],
    force = false,
  ): Promise<{ instanceId: string; lease: InstanceLease } | null> {
    if (candidates.length === 0) return null;
    const id = randomUUID();
    const keys = candidates.map((c) => this.keyFor(c));
    const index = (await INSTANCE_SLOT_ACQUIRE.run(this.redis, keys, [
      String(Date.now()),
      String(this.ttlMs),
      String(this.depth),
      id,
      force ? '1' : '0',
    ])) as number;
    if (index === 0) return null;
    return { instanceId: candidates[index - 1], lease: { id, key: keys[index - 1] } };
  }

  /**
   * Takes a slot preferring instances last given the same model set, without leaving an idle instance unused
   * (the rules are in INSTANCE_SLOT_ACQUIRE_AFFINE). Null when the job should wait; `previousModel` is what the
   * chosen instance was last given (a different one means the GPU loads another model).
   */
  async acquireWithAffinity(
    candidates: readonly string[],
    modelKey: string,
    tailsKey: string,
    wantedByOthers: readonly string[] = [],
  ): Promise<{ instanceId: string; lease: InstanceLease; previousModel: string | null } | null> {
    if (candidates.length === 0) return null;
    const id = randomUUID();
    const keys = candidates.map((c) => this.keyFor(c));
    const [index, previous] = (await INSTANCE_SLOT_ACQUIRE_AFFINE.run(
      this.redis,
      [...keys, tailsKey],
      [
        String(Date.now()),
        String(this.ttlMs),
        String(this.depth),
        id,
        modelKey,
        wantedByOthers.join('\n'),
        ...candidates,
      ],
    )) as [number, string | null];
    if (index === 0) return null;
    return {
      instanceId: candidates[index - 1],
      lease: { id, key: keys[index - 1] },
      previousModel: typeof previous === 'string' ? previous : null,
    };
  }

  async renew(lease: InstanceLease): Promise<void> {
    await this.redis.zadd(lease.key, 'XX', Date.now() + this.ttlMs, lease.id);
  }

  async release(lease: InstanceLease): Promise<void> {
    await this.redis.zrem(lease.key, lease.id);
  }

  async inUse(instanceId: string): Promise<number> {
    return this.redis.zcount(this.keyFor(instanceId), Date.now(), '+inf');
  }
}
