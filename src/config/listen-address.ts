/**
 * Which addresses count as "this machine only". Used for the listen address (HOST) and for the peer address of
 * requests to /metrics and /health (src/http/operator-access.guard.ts).
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  // IPv4 127/8, also in its IPv6-mapped form (what Node reports on a dual-stack socket).
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

export const LOOPBACK_HOST = '127.0.0.1';
export const ALL_INTERFACES = '0.0.0.0';

/**
 * Why the server may not listen on `host`, or null when it may: without API keys, only a loopback address, unless
 * the operator said API_AUTH=none. The message names both variables an operator can change.
 */
export function listenRefusal(host: string, hasKeys: boolean, auth: 'keys' | 'none'): string | null {
  if (hasKeys || auth === 'none' || isLoopbackAddress(host)) return null;
  return (
    `${host} is not a loopback address and API_KEYS is unset: anyone who reaches it could use the GPU pool. ` +
    'Set API_KEYS (Bearer auth on /v1), or API_AUTH=none to serve without keys on purpose'
  );
}
