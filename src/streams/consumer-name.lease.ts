import { randomUUID } from 'node:crypto';
import { LuaScript } from '../common/lua-script';
import type Redis from 'ioredis';

const MAX_SLOTS = 256;
const RELEASE = new LuaScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);
const RENEW = new LuaScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
);

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
    private readonly redis: Redis,
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
    const ok = await RENEW.run(this.redis, [this.key], [this.token, String(this.ttlMs)]).catch(() => 1);
    if (ok === 0) await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX').catch(() => null);
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.key) await RELEASE.run(this.redis, [this.key], [this.token]).catch(() => 0);
    this.key = undefined;
  }
}
