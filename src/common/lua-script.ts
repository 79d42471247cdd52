import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/**
 * A Lua script sent by hash (EVALSHA): the body travels once per Redis process, not once per call. After a Redis
 * restart (empty script cache) the first call gets NOSCRIPT and falls back to EVAL, which caches it again.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
