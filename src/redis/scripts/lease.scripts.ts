import { LuaScript } from '../lua-script';

/**
 * Leases with an owner token, written once for every owner in the code base (consumer names, job runs, bot
 * delivery locks and status-message leases). KEYS[1] = the lease; ARGV[1] = the owner.
 */

/**
 * Lua: takes the lease `key` for `owner` (for `ttlMs`) when free, expired or already the owner's; otherwise returns
 * the holder from the enclosing script. Shared by LEASE_TAKE and the scripts that take a lease with other work.
 */
export function leaseTakeLua(key: string, owner: string, ttlMs: string): string {
  return `
do
  local holder = redis.call('GET', ${key})
  if holder and holder ~= ${owner} then return holder end
  redis.call('SET', ${key}, ${owner}, 'PX', ${ttlMs})
end
`;
}

/** Takes the lease when free, expired or already ours (then renews it for ARGV[2] ms). Returns nil, or the holder. */
export const LEASE_TAKE = new LuaScript(
  'lease-take',
  `${leaseTakeLua('KEYS[1]', 'ARGV[1]', 'ARGV[2]')}
return false
`,
);

/** Lua expression: deletes the lease `key` only while `owner` holds it (1: released, else 0). */
export function leaseReleaseLua(key: string, owner: string): string {
  return `(redis.call('GET', ${key}) == ${owner} and redis.call('DEL', ${key}) or 0)`;
}

/** Deletes the lease only while ARGV[1] holds it. 1: released. */
export const LEASE_RELEASE = new LuaScript('lease-release', `return ${leaseReleaseLua('KEYS[1]', 'ARGV[1]')}`, {
  allowOom: true,
});

/** Extends the lease to ARGV[2] ms only while ARGV[1] holds it. 1: renewed. */
export const LEASE_RENEW = new LuaScript(
  'lease-renew',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
  { allowOom: true },
);
