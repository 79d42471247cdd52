import type Redis from 'ioredis';

/**
 * Refreshes the idle time of entries this consumer still owns (XCLAIM … JUSTID, which does not bump the
 * delivery counter) and reports the ones another consumer has taken meanwhile. Checking the owner first
 * matters: a plain XCLAIM would steal an entry back from a sweeper that rightly took it while we were
 * stalled, and both would then run it.
 */
const HEARTBEAT_LUA = `
local lost = {}
for i = 1, #ARGV - 2 do
  local id = ARGV[i + 2]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] ~= nil and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  else
    table.insert(lost, id)
  end
end
return lost
`;

export class ConsumerHeartbeat {
  private sha?: string;

  constructor(private readonly redis: Redis) {}

  /** Returns the ids no longer owned by `consumer`. */
  async beat(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const args = [group, consumer, ...ids];
    try {
      this.sha ??= (await this.redis.script('LOAD', HEARTBEAT_LUA)) as string;
      return (await this.redis.evalsha(this.sha, 1, stream, ...args)) as string[];
    } catch (err) {
      // After a Redis restart the script cache is empty: load it again once.
      if (err instanceof Error && err.message.includes('NOSCRIPT')) {
        this.sha = undefined;
        return (await this.redis.eval(HEARTBEAT_LUA, 1, stream, ...args)) as string[];
      }
      throw err;
    }
  }
}
