import type Redis from 'ioredis';
import { LuaScript } from '../common/lua-script';

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

const HEARTBEAT = new LuaScript(HEARTBEAT_LUA);

export class ConsumerHeartbeat {
  constructor(private readonly redis: Redis) {}

  /** Returns the ids no longer owned by `consumer`. */
  async beat(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await HEARTBEAT.run(this.redis, [stream], [group, consumer, ...ids])) as string[];
  }
}
