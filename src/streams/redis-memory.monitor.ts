import type Redis from 'ioredis';

export interface RedisMemory {
  usedBytes: number;
  /** 0: no maxmemory set (Redis grows until the host runs out). */
  maxBytes: number;
  /** used ÷ max, or null without a maxmemory. */
  ratio: number | null;
  policy: string;
  watermark: number;
  aboveWatermark: boolean;
}

/** A reading is reused this long: a burst of submits costs one INFO, not one each. */
const CACHE_MS = 1_000;

/**
 * Redis memory against `maxmemory`: read by submit (above REDIS_MEMORY_HIGH_WATERMARK new jobs are refused with
 * 503 before they could fail inside the pipeline) and reported by /health.
 */
export class RedisMemoryMonitor {
  private cached?: { at: number; value: Promise<RedisMemory> };

  constructor(
    private readonly redis: Redis,
    private readonly watermark: number,
  ) {}

  read(now = Date.now()): Promise<RedisMemory> {
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.value;
    const value = this.fetch();
    this.cached = { at: now, value };
    value.catch(() => (this.cached = undefined));
    return value;
  }

  private async fetch(): Promise<RedisMemory> {
    const info = await this.redis.info('memory');
    const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const usedBytes = Number(field('used_memory') ?? 0);
    const maxBytes = Number(field('maxmemory') ?? 0);
    const ratio = maxBytes > 0 ? usedBytes / maxBytes : null;
    return {
      usedBytes,
      maxBytes,
      ratio,
      policy: field('maxmemory_policy') ?? 'unknown',
      watermark: this.watermark,
      aboveWatermark: ratio !== null && ratio >= this.watermark,
    };
  }
}
