import { randomUUID } from 'node:crypto';
import { LuaScript } from '../../../common/lua-script';
import type Redis from 'ioredis';

/**
 * Leases in Redis so several gpu replicas never put more than the pipeline depth on one ComfyUI instance.
 * One sorted set per instance: member = lease id, score = expiry (ms). Acquire drops expired leases and takes
 * a slot on the least-loaded candidate, atomically. A dead worker's leases expire after `ttlMs`; live holders
 * renew theirs.
 */
const ACQUIRE = new LuaScript(`
local now = tonumber(ARGV[1])
local expiry = now + tonumber(ARGV[2])
local depth = tonumber(ARGV[3])
local force = ARGV[5] == '1'
local best, bestCount = 0, depth
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  if count < bestCount then best = i; bestCount = count end
end
if best == 0 and force then best = 1 end
if best == 0 then return 0 end
redis.call('ZADD', KEYS[best], expiry, ARGV[4])
redis.call('PEXPIRE', KEYS[best], tonumber(ARGV[2]) * 2)
return best
`);

export interface InstanceLease {
  id: string;
  key: string;
}

export class InstanceLeaseStore {
  constructor(
    private readonly redis: Redis,
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
    const index = (await ACQUIRE.run(this.redis, keys, [
      String(Date.now()),
      String(this.ttlMs),
      String(this.depth),
      id,
      force ? '1' : '0',
    ])) as number;
    if (index === 0) return null;
    return { instanceId: candidates[index - 1], lease: { id, key: keys[index - 1] } };
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
