import { Inject, Injectable } from '@nestjs/common';
import { InjectBot } from 'nestjs-telegraf';
import type { Telegraf } from 'telegraf';
import type { File, InlineKeyboardMarkup, Message, UserFromGetMe } from 'telegraf/types';
import type { Opts, Telegram as BotApiMethods } from 'telegraf/typings/core/types/typegram';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { sleep } from '../../../common/sleep.util';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { SendBudget } from './send-budget';
import { SecretScrubber } from './secret-scrubber';
import { classifyTelegramError, FileTooLargeError, TelegramCallError } from './telegram-errors';

export type BudgetClass = 'none' | 'mandatory' | 'droppable';

export interface CallOptions {
  /** mandatory: waits for the budget and through 429s; droppable: one try, skipped when busy; none: not a message. */
  budget: BudgetClass;
  /** For edits: the chat whose per-chat edit interval applies. */
  editChatId?: number;
  /** Give up after this long, waits for the budget and for 429 pauses included. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** The job the call is about, for the log lines it causes. */
  jobId?: string;
  /** For edits of a job's status message: the job, so the chat's status messages take turns (SendBudget). */
  turnOf?: string;
}

export interface SendExtra {
  replyTo?: number;
  keyboard?: InlineKeyboardMarkup;
}

const DEFAULT_DEADLINE_MS = 30_000;
const CALL_TIMEOUT_MS = 15_000;
const UPLOAD_TIMEOUT_MS = 60_000;
/** A call Telegram refused (5xx answer, connection refused) is retried at once, this many times, backing off. */
const MAX_TRANSIENT_RETRIES = 3;
const TRANSIENT_BACKOFF_MS = 500;
const MAX_ROUNDS = 100;
/** Calls that are safe to repeat after an unclear failure (an edit to the same content is a no-op). */
const IDEMPOTENT_METHODS = new Set(['getMe', 'getFile', 'editMessageText', 'editMessageReplyMarkup', 'setWebhook']);

/**
 * Every call the bot makes to the Bot API goes through here: the shared send budget, Telegram's retry_after,
 * timeouts, and errors classified (TelegramCallError) with the token scrubbed. Updates come in through
 * telegraf; replies never use `ctx.reply`, so no call escapes the budget.
 */
@Injectable()
export class TelegramGateway {
  constructor(
    @InjectBot() private readonly bot: Telegraf,
    private readonly budget: SendBudget,
    private readonly scrubber: SecretScrubber,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
  ) {}

  getMe(): Promise<UserFromGetMe> {
    return this.invoke('getMe', {}, { budget: 'none', deadlineMs: CALL_TIMEOUT_MS });
  }

  async sendMessage(
    chatId: number,
    text: string,
    extra: SendExtra,
    options: CallOptions,
  ): Promise<Message.TextMessage> {
    return this.invoke(
      'sendMessage',
      {
        chat_id: chatId,
        text,
        ...replyParameters(extra.replyTo),
        ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
      },
      options,
    );
  }

  /** Edits a text message; "message is not modified" counts as done. Leaving `keyboard` out removes the buttons. */
  async editText(
    chatId: number,
    messageId: number,
    text: string,
    keyboard: InlineKeyboardMarkup | undefined,
    options: CallOptions,
  ): Promise<void> {
    try {
      await this.invoke(
        'editMessageText',
        { chat_id: chatId, message_id: messageId, text, reply_markup: keyboard ?? { inline_keyboard: [] } },
        { ...options, editChatId: options.editChatId ?? chatId },
      );
    } catch (err) {
      if (err instanceof TelegramCallError && err.kind === 'not-modified') return;
      throw err;
    }
  }

  sendPhoto(
    chatId: number,
    bytes: Buffer,
    filename: string,
    caption: string,
    extra: SendExtra,
    options: CallOptions,
  ): Promise<Message.PhotoMessage> {
    return this.invoke(
      'sendPhoto',
      {
        chat_id: chatId,
        photo: { source: bytes, filename },
        caption,
        ...uploadReplyParameters(extra.replyTo),
        ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
      },
      options,
      UPLOAD_TIMEOUT_MS,
    );
  }

  sendDocument(
    chatId: number,
    bytes: Buffer,
    filename: string,
    caption: string,
    extra: SendExtra,
    options: CallOptions,
  ): Promise<Message.DocumentMessage> {
    return this.invoke(
      'sendDocument',
      {
        chat_id: chatId,
        document: { source: bytes, filename },
        caption,
        ...uploadReplyParameters(extra.replyTo),
        ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
      },
      options,
      UPLOAD_TIMEOUT_MS,
    );
  }

  /** Always answered, never throws: a stuck spinner on the user's button is worse than a lost toast. */
  async answerCallback(callbackQueryId: string, text?: string, alert = false): Promise<void> {
    await this.invoke(
      'answerCallbackQuery',
      { callback_query_id: callbackQueryId, ...(text ? { text: text.slice(0, 200), show_alert: alert } : {}) },
      { budget: 'none', deadlineMs: 10_000 },
    ).catch(() => undefined);
  }

  getFile(fileId: string): Promise<File> {
    return this.invoke('getFile', { file_id: fileId }, { budget: 'none', deadlineMs: CALL_TIMEOUT_MS });
  }

  setWebhook(url: string, secretToken: string, allowedUpdates: readonly string[]): Promise<true> {
    return this.invoke(
      'setWebhook',
      {
        url,
        secret_token: secretToken,
        allowed_updates: allowedUpdates as Opts<'setWebhook'>['allowed_updates'],
        drop_pending_updates: false,
      },
      { budget: 'none', deadlineMs: CALL_TIMEOUT_MS },
    );
  }

  /**
   * Downloads a file found with getFile, refusing more than `maxBytes` without reading it all (the Bot API
   * serves at most 20 MB anyway). The URL holds the token: errors are scrubbed and the URL is never logged.
   */
  async download(filePath: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const root = this.bot.telegram.options.apiRoot.replace(/\/+$/, '');
    const url = `${root}/file/bot${this.bot.telegram.token}/${filePath.replace(/^\/+/, '')}`;
    const timeout = AbortSignal.timeout(UPLOAD_TIMEOUT_MS);
    try {
      const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new TelegramCallError('bad-request', 'download', `download: HTTP ${response.status}`, response.status);
      }
      const declared = Number(response.headers.get('content-length') ?? NaN);
      if (declared > maxBytes) {
        await response.body.cancel();
        throw new FileTooLargeError(maxBytes);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (size > maxBytes) {
          await response.body.cancel().catch(() => undefined);
          throw new FileTooLargeError(maxBytes);
        }
        chunks.push(Buffer.from(chunk));
      }
      return Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof TelegramCallError || err instanceof FileTooLargeError) throw err;
      throw classifyTelegramError(err, 'download', (t) => this.scrubber.scrub(t));
    }
  }

  private async invoke<M extends keyof BotApiMethods>(
    method: M,
    payload: Opts<M>,
    options: CallOptions,
    callTimeoutMs = CALL_TIMEOUT_MS,
  ): Promise<ReturnType<BotApiMethods[M]>> {
    const deadline = Date.now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
    const request = {
      droppable: options.budget === 'droppable',
      editChatId: options.editChatId,
      turnOf: options.turnOf,
    };
    let transientRetries = 0;
    // Bounded by the deadline (every round waits for the budget or a pause); the cap is a second fence.
    for (let attempt = 0; attempt < MAX_ROUNDS; attempt++) {
      if (options.budget !== 'none' && !(await this.budget.acquire(request, deadline, options.signal))) {
        throw new TelegramCallError('rate-limited', method, `${method}: no send budget before the deadline`);
      }
      try {
        const timeout = AbortSignal.timeout(callTimeoutMs);
        const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
        // telegraf types its signal as abort-controller's; node-fetch accepts the native one.
        return await this.bot.telegram.callApi(method, payload, { signal: signal as never });
      } catch (raw) {
        const err = classifyTelegramError(raw, method, (t) => this.scrubber.scrub(t));
        if (err.kind === 'rate-limited') {
          const retryAfterMs = err.retryAfterMs ?? 1_000;
          // Once per 429 answer (the metric counts it too): every replica now waits this long.
          this.log.warn(
            { method, chatId: chatOf(payload), jobId: options.jobId, retryAfterMs },
            'Telegram rate limit (429): all replicas pause their sends',
          );
          await this.budget.pause(retryAfterMs);
          if (options.budget === 'droppable' || Date.now() + retryAfterMs > deadline) throw err;
          continue; // the next acquire waits out the shared pause
        }
        // A refused call (Telegram answered, or the connection was refused) is safe to repeat; one that got no
        // answer only when repeating it changes nothing. The caller handles the rest (see ResultDeliveryService).
        const retriable = err.kind === 'transient' && (err.definite || IDEMPOTENT_METHODS.has(method));
        if (!retriable || transientRetries >= MAX_TRANSIENT_RETRIES || options.budget === 'droppable') throw err;
        const backoffMs = TRANSIENT_BACKOFF_MS * 2 ** transientRetries++;
        if (Date.now() + backoffMs > deadline) throw err;
        this.log.info(
          { method, chatId: chatOf(payload), jobId: options.jobId, err: err.message, retryInMs: backoffMs },
          'Bot API call failed; retrying',
        );
        await sleep(backoffMs, options.signal);
      }
    }
    throw new TelegramCallError('rate-limited', method, `${method}: gave up after ${MAX_ROUNDS} rounds`);
  }

  /** The configured API root, for logs (never the token). */
  get apiRoot(): string {
    return this.config.telegram.apiRoot ?? 'https://api.telegram.org';
  }
}

function chatOf(payload: object): number | string | undefined {
  const chatId = (payload as { chat_id?: unknown }).chat_id;
  return typeof chatId === 'number' || typeof chatId === 'string' ? chatId : undefined;
}

function replyParameters(replyTo: number | undefined): object {
  return replyTo ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } } : {};
}

/**
 * For multipart uploads: telegraf 4.16 JSON-encodes only a few object fields of a form (reply_markup among
 * them) and silently drops reply_parameters, so it travels as the JSON string Telegram parses anyway.
 */
function uploadReplyParameters(replyTo: number | undefined): object {
  return replyTo
    ? { reply_parameters: JSON.stringify({ message_id: replyTo, allow_sending_without_reply: true }) }
    : {};
}
