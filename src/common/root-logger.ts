import pino, { type Logger as PinoLogger } from 'pino';
import type { AppConfig } from '../config/app-config';

export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/**
 * Paths pino blanks out wherever they appear: the bot token travels in Telegram URLs, API keys in headers.
 * Messages are also scrubbed of the configured secret values (see secret-scrubber.ts).
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

export function createRootLogger(config: Pick<AppConfig, 'logLevel' | 'logFormat'>, role: string): PinoLogger {
  return pino({
    level: config.logLevel,
    base: { role },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    transport:
      config.logFormat === 'pretty'
        ? {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          }
        : undefined,
  });
}
