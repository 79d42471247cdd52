import { LuaScript } from '../lua-script';

/**
 * Leases in Redis so several gpu replicas never put more than the pipeline depth on one ComfyUI instance.
 * One sorted set per instance: member = lease id, score = expiry (ms). Acquire drops expired leases and takes
 * a slot on the least-loaded candidate, atomically.
 */
export const INSTANCE_SLOT_ACQUIRE = new LuaScript(
  'instance-slot-acquire',
  `
local now = tonumber(ARGV[1])
local expiry = now + tonumber(ARGV[2])
local depth = tonumber(ARGV[3])
local force = ARGV[5] == '1'
local best, bestCount = 0, depth
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  if count < bestCount then best = i; bestCount = count end
end
if best == 0 and force then best = 1 end
if best == 0 then return 0 end
redis.call('ZADD', KEYS[best], expiry, ARGV[4])
redis.call('PEXPIRE', KEYS[best], tonumber(ARGV[2]) * 2)
return best
`,
);
