import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

const registry = new Map<string, LuaScript>();

/**
 * A named Lua script sent by hash (EVALSHA): the body travels once per Redis process, not once per call. After a
 * Redis restart (empty script cache) the first call gets NOSCRIPT and falls back to EVAL, which caches it again.
 * Every script is declared in src/redis/scripts/ (the registry; ESLint refuses `new LuaScript` and bare
 * EVAL anywhere else) and loaded once per process at start-up (preloadScripts).
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
    const existing = registry.get(name);
    if (existing && existing.sha !== this.sha) throw new Error(`two Lua scripts are named ${name}`);
    registry.set(name, this);
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

/** Every registered script, by name (for tests and operators: `SCRIPT EXISTS` on their hashes). */
export function registeredScripts(): readonly LuaScript[] {
  return [...registry.values()];
}

/** Loads every registered script into this Redis (one round trip), so no call pays a NOSCRIPT retry. */
export async function preloadScripts(redis: Redis): Promise<void> {
  const pipeline = redis.pipeline();
  for (const script of registry.values()) pipeline.script('LOAD', script.source);
  await pipeline.exec();
}
