import type { AppConfig } from '../config/app-config';

/** The parts of the configuration that hold credentials (every field optional: callers pass what they have). */
export type SecretBearingConfig = Partial<
  Pick<AppConfig, 'telegram' | 'apiKeys' | 'blobs' | 'redisUrl' | 'observability'>
>;

/**
 * Every credential value the configuration holds: what logs, error reports and span attributes must never show.
 * One list, so the log scrubber, Sentry's beforeSend and the span exporter agree on what a secret is.
 */
export function secretValuesOf(config: SecretBearingConfig): string[] {
  return [
    config.telegram?.botToken,
    // The token's secret half alone is still the credential (a message may quote it without the bot id).
    config.telegram?.botToken?.slice(config.telegram.botToken.indexOf(':') + 1),
    config.telegram?.webhookSecret,
    ...(config.apiKeys ?? []),
    config.blobs?.s3?.credentials?.secretAccessKey,
    config.blobs?.s3?.credentials?.sessionToken,
    ...urlCredentials(config.redisUrl),
    ...urlCredentials(config.observability?.sentry?.dsn),
    ...(config.observability?.otel?.headerValues ?? []),
  ].filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/** The password of a redis:// URL, and both parts of a Sentry DSN's key (`<public>[:<secret>]@`). */
function urlCredentials(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const parsed = new URL(url);
    const parts = url.startsWith('redis') ? [parsed.password] : [parsed.username, parsed.password];
    return parts.filter((p) => p.length > 0).flatMap((p) => [p, decodeURIComponent(p)]);
  } catch {
    return [];
  }
}
