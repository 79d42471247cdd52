import type Redis from 'ioredis';
import { LuaScript } from '../../../common/lua-script';
import type { StreamKeys } from '../../../streams/stream-keys';

/**
 * Which request entry runs a job. A job has one request entry, but a replay or a producer bug can append a second
 * while the first runs; both would run the GPU work. The lease names the entry: the same entry (redelivered to a
 * peer after its worker died) takes over, another entry of the same job stands aside.
 */
const TAKE = new LuaScript(`
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`);
const RELEASE = new LuaScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

/** Outlives any run; a dead holder's lease is taken over by its own entry's redelivery, not by waiting. */
const RUN_LEASE_TTL_MS = 6 * 3600 * 1000;

export class JobRunLease {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  private key(jobId: string): string {
    return `${this.keys.prefix}gpu:run:${jobId}`;
  }

  /** Null when this entry may run the job; otherwise the entry that holds it. */
  async take(jobId: string, entry: string): Promise<string | null> {
    const holder = await TAKE.run(this.redis, [this.key(jobId)], [entry, String(RUN_LEASE_TTL_MS)]);
    return typeof holder === 'string' ? holder : null;
  }

  async release(jobId: string, entry: string): Promise<void> {
    await RELEASE.run(this.redis, [this.key(jobId)], [entry]);
  }
}
