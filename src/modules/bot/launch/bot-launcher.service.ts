import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { InjectBot } from 'nestjs-telegraf';
import type { Telegraf } from 'telegraf';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { sleep } from '../../../common/sleep.util';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { SecretScrubber } from '../telegram/secret-scrubber';
import { classifyTelegramError, TelegramCallError } from '../telegram/telegram-errors';
import { TelegramGateway } from '../telegram/telegram-gateway';

/** The update kinds the bot handles; anything else is not even fetched. */
export const ALLOWED_UPDATES = ['message', 'callback_query', 'my_chat_member'] as const;
const RETRY_MS = 5_000;
const STOP_TIMEOUT_MS = 10_000;

export interface LauncherState {
  mode: 'polling' | 'webhook';
  status: 'starting' | 'running' | 'failed' | 'stopped';
  username?: string;
  error?: string;
}

/**
 * Starts receiving updates. nestjs-telegraf is configured with `launchOptions: false` and this takes over,
 * because its own launch is fire-and-forget: a wrong token or a second poller (401/409) would become an
 * unhandled rejection. Here:
 * - start-up checks the token with getMe: a 401 stops start-up with a clear message (without the token);
 *   Telegram being unreachable does not — the loop below keeps trying and /health says so;
 * - polling (default) runs in a supervised loop that restarts after errors (409 from another poller, network);
 * - webhook mode (TELEGRAM_WEBHOOK_URL) registers the URL with its secret; the Nest HTTP server serves it
 *   (TelegramWebhookMiddleware). The webhook is left in place at shutdown: other replicas still serve it.
 */
@Injectable()
export class BotLauncherService implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  readonly state: LauncherState;
  private readonly stop = new AbortController();
  private loop?: Promise<void>;
  private polling = false;

  constructor(
    @InjectBot() private readonly bot: Telegraf,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly gateway: TelegramGateway,
    private readonly scrubber: SecretScrubber,
  ) {
    this.state = { mode: config.telegram.webhookUrl ? 'webhook' : 'polling', status: 'starting' };
  }

  async onModuleInit(): Promise<void> {
    // nestjs-telegraf's handler logs the raw error (with the failed call's payload): ours logs it scrubbed.
    this.bot.catch((err, ctx) => {
      this.log.error({ updateId: ctx.update.update_id, err: this.describe(err) }, 'telegram update handler failed');
    });
    // nestjs-telegraf calls bot.stop() at shutdown, which throws "Bot is not running!" when we never polled
    // (webhook mode, or start-up failed) — nestjs-telegraf#1079. Only a running poller is stopped.
    const stopPolling = this.bot.stop.bind(this.bot);
    this.bot.stop = (reason?: string) => {
      if (!this.polling) return;
      this.polling = false;
      stopPolling(reason);
    };
    try {
      this.bot.botInfo = await this.gateway.getMe();
      this.state.username = this.bot.botInfo.username;
    } catch (err) {
      if (err instanceof TelegramCallError && (err.kind === 'unauthorized' || err.code === 404)) {
        this.state.status = 'failed';
        this.state.error = 'token rejected';
        throw new Error(
          'Telegram rejected TELEGRAM_BOT_TOKEN (getMe answered 401 Unauthorized): check the token with @BotFather ' +
            '(or unset TELEGRAM_BOT_TOKEN to run without the bot).',
        );
      }
      this.state.error = this.describe(err);
      this.log.warn({ err: this.state.error }, 'Telegram is not reachable yet; the bot keeps trying');
    }
  }

  onApplicationBootstrap(): void {
    this.loop = this.state.mode === 'webhook' ? this.registerWebhook() : this.poll();
  }

  async onModuleDestroy(): Promise<void> {
    this.stop.abort();
    this.bot.stop('shutdown');
    const timeout = new AbortController();
    await Promise.race([this.loop, sleep(STOP_TIMEOUT_MS, timeout.signal)]);
    timeout.abort();
    this.state.status = 'stopped';
  }

  private async poll(): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        this.bot.botInfo ??= await this.gateway.getMe();
        this.state.username = this.bot.botInfo.username;
        this.polling = true;
        this.state.status = 'running';
        delete this.state.error;
        this.log.info({ bot: this.bot.botInfo.username, apiRoot: this.gateway.apiRoot }, 'telegram bot polling');
        // Resolves when polling stops (bot.stop); rejects on 401/409 or a handler error telegraf can't absorb.
        await this.bot.launch({ allowedUpdates: [...ALLOWED_UPDATES], dropPendingUpdates: false });
        if (this.stop.signal.aborted) break;
        this.log.warn({}, 'telegram polling stopped by itself; restarting');
      } catch (err) {
        this.polling = false;
        if (this.stop.signal.aborted) break;
        this.state.status = 'failed';
        this.state.error = this.describe(err);
        const hint =
          err instanceof Error && /409/.test(err.message)
            ? 'another process polls with this token (one poller per token; use the webhook for several replicas)'
            : 'retrying';
        this.log.error({ err: this.state.error, retryInMs: RETRY_MS }, `telegram polling failed: ${hint}`);
      }
      await sleep(RETRY_MS, this.stop.signal);
    }
  }

  private async registerWebhook(): Promise<void> {
    const url = this.config.telegram.webhookUrl;
    const secret = this.config.telegram.webhookSecret;
    if (!url || !secret) return;
    for (let attempt = 1; !this.stop.signal.aborted; attempt++) {
      try {
        this.bot.botInfo ??= await this.gateway.getMe();
        this.state.username = this.bot.botInfo.username;
        await this.gateway.setWebhook(url, secret, ALLOWED_UPDATES);
        this.state.status = 'running';
        delete this.state.error;
        this.log.info({ bot: this.bot.botInfo.username, path: new URL(url).pathname }, 'telegram webhook set');
        return;
      } catch (err) {
        this.state.status = 'failed';
        this.state.error = this.describe(err);
        this.log.error({ err: this.state.error, attempt, retryInMs: RETRY_MS }, 'setWebhook failed; retrying');
      }
      await sleep(RETRY_MS, this.stop.signal);
    }
  }

  private describe(err: unknown): string {
    return classifyTelegramError(err, 'telegram', (t) => this.scrubber.scrub(t)).message;
  }
}
