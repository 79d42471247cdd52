/** Keys whose values are credentials whatever they look like (request headers, cookies, extra data). */
const SECRET_KEY = /authorization|cookie|token|secret|password|passwd|api[-_]?key|dsn|credential/i;
const CENSOR = '[redacted]';
const MAX_DEPTH = 32;

/**
 * A copy of `value` with every string passed through `scrub` and the values of credential-named keys replaced:
 * what Sentry's beforeSend applies to a whole event (message, exception values, breadcrumbs, request data, tags).
 */
export function deepScrub<T>(value: T, scrub: (text: string) => string, depth = 0): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v: unknown) => deepScrub(v, scrub, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] =
      SECRET_KEY.test(key) && (typeof v === 'string' || typeof v === 'number')
        ? CENSOR
        : deepScrub(v, scrub, depth + 1);
  }
  return out as T;
}
