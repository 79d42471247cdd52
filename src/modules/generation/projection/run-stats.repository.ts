import { Inject, Injectable } from '@nestjs/common';
import { LuaScript } from '../../../common/lua-script';
import type Redis from 'ioredis';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/** Exponential moving average of run time (α = 0.2): recent jobs count most, one outlier does not dominate. */
const EMA = new LuaScript(`
local avg = tonumber(redis.call('HGET', KEYS[1], 'avgRunMs'))
local x = tonumber(ARGV[1])
if avg == nil then avg = x else avg = avg * 0.8 + x * 0.2 end
redis.call('HSET', KEYS[1], 'avgRunMs', tostring(avg))
redis.call('HINCRBY', KEYS[1], 'completed', 1)
return tostring(avg)
`);

/** Assumed run time before any job has finished: a typical SDXL image on one GPU. */
export const DEFAULT_RUN_MS = 15_000;

@Injectable()
export class RunStatsRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async recordRun(runMs: number): Promise<void> {
    await EMA.run(this.redis, [this.keys.runStats], [String(Math.max(0, Math.round(runMs)))]);
  }

  async averageRunMs(): Promise<number> {
    const value = Number(await this.redis.hget(this.keys.runStats, 'avgRunMs'));
    return Number.isFinite(value) && value > 0 ? value : DEFAULT_RUN_MS;
  }
}
