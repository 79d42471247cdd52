import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../redis/redis-client';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import type { InstanceCapabilities } from './instance-capabilities';

/** One instance as a gpu process last saw it: its state, and what it can run (null until first read). */
export interface InstanceCapabilityAdvert {
  readonly instanceId: string;
  readonly state: 'up' | 'quarantined' | 'unknown';
  readonly capabilities: InstanceCapabilities | null;
  /** Written again by a live gpu process well before this; past it the advert no longer counts. */
  readonly expiresAt: number;
}

/**
 * `gpu:capabilities`: instance id → its advert (JSON), published by the gpu processes that use the instance and
 * read by the API at submit (it runs in another process) and by `cli stats`. Entries expire by their `expiresAt`,
 * like the `gpu:workers` adverts, so an instance no process uses any more stops counting.
 */
/**
 * A submit reuses the adverts read this recently: adverts are rewritten every few seconds and each is large (every
 * node class and model file of an instance), so reading and parsing them once per job would cost a burst of
 * submits more than the rest of the submit together.
 */
const LIVE_CACHE_MS = 500;

@Injectable()
export class PoolCapabilityStore {
  private readonly key: string;
  private cached?: { at: number; adverts: Promise<InstanceCapabilityAdvert[]> };

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    keys: StreamKeys,
  ) {
    this.key = `${keys.prefix}gpu:capabilities`;
  }

  async publish(adverts: readonly InstanceCapabilityAdvert[]): Promise<void> {
    if (adverts.length === 0) return;
    this.cached = undefined;
    await this.redis.hset(this.key, Object.fromEntries(adverts.map((a) => [a.instanceId, JSON.stringify(a)])));
  }

  async remove(instanceIds: readonly string[]): Promise<void> {
    this.cached = undefined;
    if (instanceIds.length > 0) await this.redis.hdel(this.key, ...instanceIds);
  }

  /** Every advert, expired ones included (`cli stats` shows them as such). */
  async all(): Promise<InstanceCapabilityAdvert[]> {
    const raw = await this.redis.hvals(this.key);
    return raw.map(parseAdvert).filter((a): a is InstanceCapabilityAdvert => a !== undefined);
  }

  /** The adverts still valid at `now` (read at most LIVE_CACHE_MS ago). */
  async live(now = Date.now()): Promise<InstanceCapabilityAdvert[]> {
    if (!this.cached || now - this.cached.at >= LIVE_CACHE_MS || now < this.cached.at) {
      const adverts = this.all();
      this.cached = { at: now, adverts };
      adverts.catch(() => (this.cached = undefined));
    }
    return (await this.cached.adverts).filter((a) => a.expiresAt > now);
  }
}

function parseAdvert(raw: string): InstanceCapabilityAdvert | undefined {
  try {
    const advert = JSON.parse(raw) as InstanceCapabilityAdvert;
    return typeof advert.instanceId === 'string' && typeof advert.expiresAt === 'number' ? advert : undefined;
  } catch {
    return undefined;
  }
}
