import { primaries, type RedisClient } from '../redis/redis-client';

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
 * 503 before they could fail inside the pipeline) and reported by /health. On a Redis Cluster each primary has its own
 * memory: the fullest one is reported (by ratio, else by bytes), since it is the first to refuse writes.
 */
export class RedisMemoryMonitor {
  private cached?: { at: number; value: Promise<RedisMemory> };

  constructor(
    private readonly redis: RedisClient,
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
    const nodes = primaries(this.redis);
    // A cluster client that has not met its nodes yet knows none: ask through it (any node answers INFO).
    const readings = await Promise.all(
      (nodes.length > 0 ? nodes : [this.redis]).map(async (node) => this.parse(await node.info('memory'))),
    );
    return readings.reduce((a, b) => (fuller(b, a) ? b : a));
  }

  private parse(info: string): RedisMemory {
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

function fuller(a: RedisMemory, b: RedisMemory): boolean {
  if (a.ratio !== null || b.ratio !== null) return (a.ratio ?? -1) > (b.ratio ?? -1);
  return a.usedBytes > b.usedBytes;
}
