import { Injectable } from '@nestjs/common';
import { InjectBot } from 'nestjs-telegraf';
import type { Telegraf } from 'telegraf';
import { MetricsService, type TelegramOutcome } from '../../metrics';
import { SecretScrubber } from './secret-scrubber';
import { classifyTelegramError, type TelegramCallError } from './telegram-errors';

type CallApi = (method: string, payload: unknown, options?: unknown) => Promise<unknown>;

/**
 * Counts every Bot API request this replica makes, by method and outcome, with the retry_after of each 429
 * (MetricsService.telegramCall). It sits on telegraf's one HTTP entry point (`telegram.callApi`) rather than in
 * TelegramGateway, because telegraf's own calls — getUpdates while polling — never pass the gateway. Each HTTP
 * attempt counts once: a call the gateway retries after a 429 shows as one `rate_limited` and one `ok`.
 */
@Injectable()
export class TelegramCallMeter {
  constructor(
    @InjectBot() bot: Telegraf,
    private readonly metrics: MetricsService,
    private readonly scrubber: SecretScrubber,
  ) {
    // Installed at construction: start-up code (BotLauncherService's getMe in onModuleInit) already calls the API.
    const telegram = bot.telegram;
    const call = telegram.callApi.bind(telegram) as CallApi;
    const metered: CallApi = async (method, payload, options) => {
      try {
        const result = await call(method, payload, options);
        this.metrics.telegramCall(method, 'ok');
        return result;
      } catch (err) {
        this.record(
          method,
          classifyTelegramError(err, method, (t) => this.scrubber.scrub(t)),
        );
        throw err;
      }
    };
    telegram.callApi = metered as typeof telegram.callApi;
  }

  private record(method: string, err: TelegramCallError): void {
    const outcome = outcomeOf(err);
    this.metrics.telegramCall(
      method,
      outcome,
      outcome === 'rate_limited' && err.retryAfterMs !== undefined
        ? { retryAfterSeconds: err.retryAfterMs / 1000 }
        : {},
    );
  }
}

/** The metric's outcome label of a failed request: by Telegram's answer, or `error` when there was none (or a 5xx). */
export function outcomeOf(err: TelegramCallError): TelegramOutcome {
  if (err.kind === 'rate-limited') return 'rate_limited';
  if (err.kind === 'not-modified') return 'not_modified';
  if (err.code === 403) return 'blocked';
  if (err.code === 401) return 'unauthorized';
  if (err.code !== undefined && err.code >= 400 && err.code < 500) return 'bad_request';
  return 'error';
}
