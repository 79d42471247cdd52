import { randomUUID } from 'node:crypto';
import { LEASE_RELEASE, LEASE_RENEW } from '../redis/scripts';
import type { RedisClient } from '../redis/redis-client';

const MAX_SLOTS = 256;
/**
 * Stable, unique consumer names `<base>-<n>`: the lowest free slot, held by a lease. A restarted process usually
 * gets its old name back and resumes its own PEL; two live processes on one host never share a name (which
 * would let one "recover" the other's in-flight entries).
 */
export class ConsumerNameLease {
  private readonly token = randomUUID();
  private key?: string;
  private timer?: NodeJS.Timeout;
  name = '';

  constructor(
    private readonly redis: RedisClient,
    private readonly leasePrefix: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(base: string): Promise<string> {
    for (let n = 1; n <= MAX_SLOTS; n++) {
      const candidate = `${base}-${n}`;
      const key = `${this.leasePrefix}${candidate}`;
      if ((await this.redis.set(key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK') {
        this.key = key;
        this.name = candidate;
        this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
        this.timer.unref();
        return candidate;
      }
    }
    throw new Error(`no free consumer name under ${base} (${MAX_SLOTS} live processes?)`);
  }

  private async renew(): Promise<void> {
    if (!this.key) return;
    const ok = await LEASE_RENEW.run(this.redis, [this.key], [this.token, String(this.ttlMs)]).catch(() => 1);
    if (ok === 0) await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX').catch(() => null);
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.key) await LEASE_RELEASE.run(this.redis, [this.key], [this.token]).catch(() => 0);
    this.key = undefined;
  }
}
