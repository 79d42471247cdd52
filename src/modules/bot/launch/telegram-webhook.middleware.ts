import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { Request, Response } from 'express';
import { InjectBot } from 'nestjs-telegraf';
import type { Telegraf } from 'telegraf';
import type { Update } from 'telegraf/types';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { SecretScrubber } from '../telegram/secret-scrubber';

const SECRET_HEADER = 'x-telegram-bot-api-secret-token';

/**
 * The webhook route (the path of TELEGRAM_WEBHOOK_URL) on the Nest HTTP server. A request without the right
 * `X-Telegram-Bot-Api-Secret-Token` gets 401 and touches nothing. A good one is handled (the job is submitted,
 * which is quick — the picture is not awaited) and then answered 200 with an empty body: Telegram redelivers on
 * anything else or after ~60 s, and a redelivered update finds its job by update_id.
 */
@Injectable()
export class TelegramWebhookMiddleware implements NestMiddleware {
  private readonly secretDigest: Buffer;

  constructor(
    @InjectBot() private readonly bot: Telegraf,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly scrubber: SecretScrubber,
  ) {
    this.secretDigest = digest(config.telegram.webhookSecret ?? '');
  }

  async use(req: Request, res: Response): Promise<void> {
    const given = req.headers[SECRET_HEADER];
    // Digests have equal length, so the comparison is constant-time whatever was sent.
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), this.secretDigest)) {
      this.log.warn({ ip: req.ip }, 'telegram webhook call with a wrong or missing secret token refused');
      res.status(401).json({ error: 'unauthorized', message: `missing or wrong ${SECRET_HEADER}` });
      return;
    }
    const update: unknown = req.body;
    if (!isUpdate(update)) {
      res.status(400).json({ error: 'invalid_request', message: 'body must be a Telegram Update' });
      return;
    }
    try {
      await this.bot.handleUpdate(update);
    } catch (err) {
      const message = this.scrubber.scrub(err instanceof Error ? err.message : String(err));
      this.log.error({ updateId: update.update_id, err: message }, 'webhook update failed; Telegram will retry');
      res.status(500).json({ error: 'internal', message: 'update not processed' });
      return;
    }
    res.status(200).json({});
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function isUpdate(value: unknown): value is Update {
  return (
    typeof value === 'object' && value !== null && Number.isSafeInteger((value as { update_id?: unknown }).update_id)
  );
}
