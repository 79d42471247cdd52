import { createHash } from 'node:crypto';
import { isCluster, primaries, type RedisClient } from './redis-client';

const registry = new Map<string, LuaScript>();

export interface LuaScriptOptions {
  /**
   * Runs even when Redis is above maxmemory. With a shebang Redis refuses a script that may write up front when it
   * is out of memory; without one (compatibility mode) it refused only at the script's first write that adds data
   * (a DENYOOM command such as SET, XADD, HSET), letting a script whose first write removes something (ZREM, DEL)
   * run to its end. Scripts of that second kind keep running (releases, deletes, heartbeats, the claim, the
   * dispatch, the bot's finish): a full Redis must still be emptied and work in flight finished. Scripts that add
   * data first (submit, appending events, storing images, taking leases) are refused, as before.
   */
  allowOom?: boolean;
}

/**
 * A named Lua script sent by hash (EVALSHA): the body travels once per Redis process, not once per call. After a
 * Redis restart (empty script cache) the first call gets NOSCRIPT and falls back to EVAL, which caches it again.
 * Every script is declared in src/redis/scripts/ (the registry; ESLint refuses `new LuaScript` and bare
 * EVAL anywhere else) and loaded once per process at start-up (preloadScripts).
 */
export class LuaScript {
  readonly sha: string;
  /** The body as sent: a `#!lua` shebang (Redis 7 script flags) and then the script. */
  readonly source: string;

  constructor(
    readonly name: string,
    body: string,
    options: LuaScriptOptions = {},
  ) {
    // A shebang makes a Redis in cluster mode check every key the script touches, declared in KEYS or built from a
    // prefix, against one hash slot ("Script attempted to access keys that do not hash to the same slot"), even on a
    // one-node cluster that holds every slot (test/redis/cluster-slots.spec.ts runs the pipeline on one). Without it
    // Redis runs a script in compatibility mode and lets it touch any key the node holds.
    this.source = `#!lua${options.allowOom ? ' flags=allow-oom' : ''}\n${body}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
    const existing = registry.get(name);
    if (existing && existing.sha !== this.sha) throw new Error(`two Lua scripts are named ${name}`);
    registry.set(name, this);
  }

  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number | Buffer)[],
  ): Promise<unknown> {
    // A cluster client routes a script by its first key; a script without one would go to an arbitrary node.
    if (keys.length === 0) throw new Error(`Lua script ${this.name} called without a key`);
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

/**
 * Loads every registered script into this Redis (one round trip), so no call pays a NOSCRIPT retry. On a cluster the
 * script cache is per node: every primary gets them, once the client knows its nodes (a node added later, or a
 * replica promoted, loads each script on its first EVAL fallback).
 */
export async function preloadScripts(redis: RedisClient): Promise<void> {
  if (isCluster(redis) && redis.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('end', () => reject(new Error('cluster connection ended before it was ready')));
    });
  }
  await Promise.all(
    primaries(redis).map(async (node) => {
      const pipeline = node.pipeline();
      for (const script of registry.values()) pipeline.script('LOAD', script.source);
      await pipeline.exec();
    }),
  );
}
