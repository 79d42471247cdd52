import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { AppConfig } from '../config/app-config';
import { createLogScrubber } from './log-redaction';
import { secretValuesOf, type SecretBearingConfig } from './secret-values';

export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/**
 * Paths pino blanks out wherever they appear: the bot token travels in Telegram URLs, API keys in headers.
 * Every serialized line is also scrubbed of the configured secret values and token-shaped text (log-redaction.ts).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-telegram-bot-api-secret-token"]',
  'headers.authorization',
  'authorization',
  'token',
  'botToken',
  'apiKey',
  'apiKeys',
  '*.token',
  '*.botToken',
  '*.apiKey',
];

export function createRootLogger(
  config: Pick<AppConfig, 'logLevel' | 'logFormat'> & SecretBearingConfig,
  role: string,
  /** Tests capture the JSON lines here; the default is stdout (or pino-pretty with LOG_FORMAT=pretty). */
  destination?: DestinationStream,
): PinoLogger {
  const scrub = createLogScrubber(secretValuesOf(config));
  const options = {
    level: config.logLevel,
    base: { role },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks: { streamWrite: scrub },
  };
  if (destination) return pino(options, destination);
  return pino({
    ...options,
    transport:
      config.logFormat === 'pretty'
        ? {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          }
        : undefined,
  });
}
