import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isUploadedFile, parseParams, type Params, type UploadedFile } from './fake-telegram-body';
import {
  checkMarkup,
  fail,
  imageSize,
  key,
  ok,
  readBody,
  sameMarkup,
  send,
  str,
  type Json,
  type Reply,
} from './fake-telegram.util';
import type {
  ApiCall,
  BotMessage,
  CallbackAnswer,
  ChatType,
  ErrorRule,
  FakeUser,
  MessageOptions,
  InjectedUpdate,
  RateLimitRule,
  ReplyMarkup,
  WebhookDelivery,
} from './fake-telegram.types';

/** Methods that put or change a message in a chat: what Telegram's flood limits count, and what 429s hit. */
export const MESSAGE_METHODS: readonly string[] = [
  'sendMessage',
  'sendPhoto',
  'sendDocument',
  'editMessageText',
  'editMessageCaption',
  'editMessageReplyMarkup',
  'deleteMessage',
];

const DOWNLOAD_LIMIT = 20 * 1024 * 1024;
const PHOTO_LIMIT = 10 * 1024 * 1024;
const DOCUMENT_LIMIT = 50 * 1024 * 1024;
const NOT_MODIFIED =
  'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';

interface StoredFile {
  fileId: string;
  uniqueId: string;
  path: string;
  bytes: Buffer;
  /** What getFile reports (may be set larger than `bytes` to model a huge upload without allocating it). */
  size: number;
}

interface Poller {
  offset: number;
  limit: number;
  respond: (reply: Reply) => void;
  timer: NodeJS.Timeout;
}

interface ChatState {
  nextMessageId: number;
  userMessages: Set<number>;
  blocked: boolean;
  type: ChatType;
  title?: string;
}

/** A user's message as the fake keeps it, so a later message can reply to it. */
interface UserMessage {
  chatId: number;
  messageId: number;
  from: FakeUser;
  text?: string;
}

/**
 * A Bot API server for tests, on 127.0.0.1 (port 0), faithful to the parts of Telegram this bot uses (see
 * ../shared/reference/telegram/BOT_API_FACTS.md): `{ok, result}` / `{ok:false, error_code, description,
 * parameters}` envelopes, getUpdates long polling with offset confirmation and 409s, multipart uploads, edit
 * rules ("message is not modified", keyboards removed when reply_markup is left out), callback answers,
 * getFile + `/file/bot<token>/<path>`, webhooks with the secret header. The side API (plain methods) plays the
 * users and the faults.
 */
export class FakeTelegram {
  readonly token: string;
  readonly botId: number;
  readonly username: string;
  readonly calls: ApiCall[] = [];
  readonly callbackAnswers: CallbackAnswer[] = [];
  readonly webhookDeliveries: WebhookDelivery[] = [];

  private server?: Server;
  private baseUrl = '';
  private nextUpdateId = 100_000 + Math.floor(Math.random() * 1_000);
  private nextFileId = 1;
  private pendingUpdates: Json[] = [];
  private pollers: Poller[] = [];
  private readonly chats = new Map<number, ChatState>();
  private readonly users = new Map<number, FakeUser>();
  private readonly messages = new Map<string, BotMessage>();
  private readonly files = new Map<string, StoredFile>();
  private readonly openCallbacks = new Set<string>();
  private readonly messageFiles = new Map<string, StoredFile>();
  private readonly userMessageLog = new Map<string, UserMessage>();
  private rateLimit?: RateLimitRule & { until?: number; left?: number };
  private errorRule?: ErrorRule & { left: number };
  private webhook?: { url: string; secret?: string; lastError?: { date: number; message: string } };
  private readonly deliveries = new Set<Promise<void>>();

  constructor(options: { token?: string; username?: string } = {}) {
    this.token = options.token ?? `123456:TEST-${randomBytes(12).toString('hex')}`;
    this.botId = Number(this.token.split(':')[0]);
    this.username = options.username ?? 'comfy_relay_test_bot';
  }

  /** The API root to give the bot (TELEGRAM_API_ROOT). */
  get url(): string {
    return this.baseUrl;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.route(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    for (const poller of this.pollers.splice(0)) {
      clearTimeout(poller.timer);
      poller.respond(ok([]));
    }
    await Promise.allSettled([...this.deliveries]);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- side API: users ------------------------------------------------------------------------------------

  user(id: number, options: { firstName?: string; languageCode?: string } = {}): FakeUser {
    const user: FakeUser = {
      id,
      firstName: options.firstName ?? `User${id}`,
      languageCode: options.languageCode ?? 'en',
    };
    this.users.set(id, user);
    this.chat(id);
    return user;
  }

  /** A group or supergroup (ids below zero, as Telegram's) that any fake user may write in. */
  group(id: number, options: { type?: 'group' | 'supergroup'; title?: string } = {}): number {
    if (id >= 0) throw new Error('group ids are negative');
    const chat = this.chat(id);
    chat.type = options.type ?? 'supergroup';
    chat.title = options.title ?? `Group ${-id}`;
    return id;
  }

  /**
   * The user sends `text` (in their private chat, or in `chatId`, a group made with `group()`); with a webhook
   * set, `deliveries` > 1 POSTs it that many times at once (a retry race). Entities are found as Telegram does:
   * a leading /command and every @username.
   */
  sendText(user: FakeUser, text: string, options: MessageOptions & { deliveries?: number } = {}): InjectedUpdate {
    const message: Json = { ...this.userMessage(user, options, text), text };
    const entities = textEntities(text);
    if (entities.length > 0) message.entities = entities;
    return this.injectUpdate({ message }, options);
  }

  sendPhoto(
    user: FakeUser,
    photo: { bytes: Buffer; caption?: string; width?: number; height?: number; declaredSize?: number } & MessageOptions,
  ): InjectedUpdate {
    const width = photo.width ?? 512;
    const height = photo.height ?? 512;
    const thumb = this.storeFile(photo.bytes.subarray(0, Math.min(photo.bytes.length, 1024)), 'photos', 'jpg');
    const full = this.storeFile(photo.bytes, 'photos', 'jpg', photo.declaredSize);
    const sizes = [
      { ...photoSize(thumb), width: 90, height: Math.max(1, Math.round((90 * height) / width)) },
      { ...photoSize(full), width, height },
    ];
    const message: Json = {
      ...this.userMessage(user, { chatId: photo.chatId, replyTo: photo.replyTo }),
      photo: sizes,
    };
    if (photo.caption !== undefined) {
      message.caption = photo.caption;
      const entities = textEntities(photo.caption);
      if (entities.length > 0) message.caption_entities = entities;
    }
    return this.injectUpdate({ message });
  }

  sendDocument(
    user: FakeUser,
    document: {
      bytes: Buffer;
      fileName: string;
      mimeType: string;
      caption?: string;
      declaredSize?: number;
    } & MessageOptions,
  ): InjectedUpdate {
    const file = this.storeFile(
      document.bytes,
      'documents',
      document.fileName.split('.').pop() ?? 'bin',
      document.declaredSize,
    );
    const message: Json = {
      ...this.userMessage(user, { chatId: document.chatId, replyTo: document.replyTo }),
      document: {
        file_id: file.fileId,
        file_unique_id: file.uniqueId,
        file_name: document.fileName,
        mime_type: document.mimeType,
        file_size: file.size,
      },
    };
    if (document.caption !== undefined) {
      message.caption = document.caption;
      const entities = textEntities(document.caption);
      if (entities.length > 0) message.caption_entities = entities;
    }
    return this.injectUpdate({ message });
  }

  sendSticker(user: FakeUser, options: MessageOptions = {}): InjectedUpdate {
    const file = this.storeFile(Buffer.from('RIFF0000WEBPVP8 '), 'stickers', 'webp');
    return this.injectUpdate({
      message: {
        ...this.userMessage(user, options),
        sticker: {
          file_id: file.fileId,
          file_unique_id: file.uniqueId,
          type: 'regular',
          width: 512,
          height: 512,
          is_animated: false,
          is_video: false,
          emoji: '👍',
        },
      },
    });
  }

  /** `user` presses an inline button (callback_data `data`) under the bot's message `messageId` in `chatId`. */
  pressButton(user: FakeUser, chatId: number, messageId: number, data: string): InjectedUpdate {
    const message = this.messages.get(key(chatId, messageId));
    const id = `${randomBytes(8).readBigUInt64BE()}`;
    this.openCallbacks.add(id);
    const update = this.injectUpdate({
      callback_query: {
        id,
        from: this.userJson(user),
        chat_instance: String(chatId),
        data,
        ...(message ? { message: this.messageJson(message) } : {}),
      },
    });
    return { ...update, callbackQueryId: id };
  }

  /** Queues (polling) or POSTs (webhook) an update; `update_id` is assigned unless given (give it to duplicate). */
  injectUpdate(update: Json, options: { deliveries?: number } = {}): InjectedUpdate {
    const updateId = typeof update.update_id === 'number' ? update.update_id : this.nextUpdateId++;
    const full: Json = { ...update, update_id: updateId };
    const message = full.message as Json | undefined;
    if (this.webhook) {
      for (let i = 0; i < (options.deliveries ?? 1); i++) this.track(this.deliverWebhook(full));
    } else {
      this.pendingUpdates.push(full);
      this.pendingUpdates.sort((a, b) => Number(a.update_id) - Number(b.update_id));
      this.wakePollers();
    }
    return { updateId, raw: full, ...(message ? { messageId: Number(message.message_id) } : {}) };
  }

  // ---- side API: what the bot did ---------------------------------------------------------------------------

  /** The bot's messages in a chat, oldest first, with their edit history. */
  botMessages(chatId: number): BotMessage[] {
    return [...this.messages.values()].filter((m) => m.chatId === chatId).sort((a, b) => a.messageId - b.messageId);
  }

  photos(chatId: number): BotMessage[] {
    return this.botMessages(chatId).filter((m) => m.kind === 'photo' || m.kind === 'document');
  }

  /** Calls per wall-clock second (epoch seconds → count), optionally filtered (default: message methods). */
  callsPerSecond(filter: (call: ApiCall) => boolean = (c) => MESSAGE_METHODS.includes(c.method)): Map<number, number> {
    const counts = new Map<number, number>();
    for (const call of this.calls) {
      if (!filter(call)) continue;
      const second = Math.floor(call.at / 1000);
      counts.set(second, (counts.get(second) ?? 0) + 1);
    }
    return counts;
  }

  /** The most calls seen in any sliding one-second window (stricter than whole seconds). */
  maxCallsInAnySecond(filter: (call: ApiCall) => boolean = (c) => MESSAGE_METHODS.includes(c.method)): number {
    const times = this.calls.filter(filter).map((c) => c.at);
    let best = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }

  /** getUpdates calls waiting right now (long polls in progress). */
  get waitingPolls(): number {
    return this.pollers.length;
  }

  methodCalls(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  get webhookUrl(): string | undefined {
    return this.webhook?.url;
  }

  /** Resolves when every webhook delivery started so far has finished. */
  async webhookIdle(): Promise<void> {
    await Promise.allSettled([...this.deliveries]);
  }

  // ---- side API: faults ----------------------------------------------------------------------------------------

  /** The next `calls` matching calls — or every matching call for `forMs` — answer 429 with `retryAfter` seconds. */
  forceRateLimit(rule: RateLimitRule): void {
    this.rateLimit = {
      ...rule,
      left: rule.calls,
      until: rule.forMs !== undefined ? Date.now() + rule.forMs : undefined,
    };
  }

  /** Lifts a forced rate limit now. */
  clearRateLimit(): void {
    this.rateLimit = undefined;
  }

  /** The next `calls` calls of `methods` answer `status` (a 5xx: Telegram had trouble and did not act). */
  failNext(rule: ErrorRule): void {
    this.errorRule = { ...rule, left: rule.calls };
  }

  /** The user blocked the bot: every call to this chat answers 403. */
  blockChat(chatId: number, blocked = true): void {
    this.chat(chatId).blocked = blocked;
  }

  // ---- HTTP ------------------------------------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Arrival is when the request came in, not when its (maybe large) upload was read.
    const arrivedAt = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(req).catch(() => null);
    if (body === null) {
      send(res, fail(413, 'Request Entity Too Large'));
      return;
    }
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) {
      this.download(res, file[1]!, decodeURIComponent(file[2]!));
      return;
    }
    const api = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!api) {
      send(res, fail(404, 'Not Found'));
      return;
    }
    const [, token, method] = api as unknown as [string, string, string];
    if (token !== this.token) {
      this.record(method, undefined, 401, arrivedAt);
      send(res, fail(401, 'Unauthorized'));
      return;
    }
    const params = parseParams(url.searchParams, body, req.headers['content-type']);
    if (!params) {
      send(res, fail(400, 'Bad Request: invalid request body'));
      return;
    }
    const chatId = params.chat_id === undefined ? undefined : Number(params.chat_id);
    const call = this.record(method, chatId, 0, arrivedAt);
    if (method === 'getUpdates') {
      this.getUpdates(params, req, res, call);
      return;
    }
    const reply = this.limited(method) ?? this.injectedError(method) ?? this.call(method, params);
    call.status = reply.status;
    send(res, reply);
  }

  /** Recorded on arrival (what rate limits count); the status is filled in when answered (0 while waiting). */
  private record(method: string, chatId?: number, status = 0, at = Date.now()): ApiCall {
    const call: ApiCall = {
      method,
      at,
      ...(chatId !== undefined && !Number.isNaN(chatId) ? { chatId } : {}),
      status,
    };
    this.calls.push(call);
    return call;
  }

  private limited(method: string): Reply | undefined {
    const rule = this.rateLimit;
    if (!rule || !(rule.methods ?? MESSAGE_METHODS).includes(method)) return undefined;
    if (rule.until !== undefined && Date.now() >= rule.until) {
      this.rateLimit = undefined;
      return undefined;
    }
    if (rule.left !== undefined) {
      if (rule.left <= 0) {
        this.rateLimit = undefined;
        return undefined;
      }
      rule.left--;
    }
    return {
      status: 429,
      body: {
        ok: false,
        error_code: 429,
        description: `Too Many Requests: retry after ${rule.retryAfter}`,
        parameters: { retry_after: rule.retryAfter },
      },
    };
  }

  private injectedError(method: string): Reply | undefined {
    const rule = this.errorRule;
    if (!rule || !rule.methods.includes(method)) return undefined;
    if (--rule.left <= 0) this.errorRule = undefined;
    return fail(rule.status, rule.description ?? 'Internal Server Error');
  }

  private call(method: string, p: Params): Reply {
    switch (method) {
      case 'getMe':
        return ok({
          id: this.botId,
          is_bot: true,
          first_name: 'Comfy Relay Test',
          username: this.username,
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
        });
      case 'sendMessage':
        return this.sendMessage(p);
      case 'sendPhoto':
        return this.sendFile(p, 'photo');
      case 'sendDocument':
        return this.sendFile(p, 'document');
      case 'editMessageText':
        return this.edit(p, 'text');
      case 'editMessageCaption':
        return this.edit(p, 'caption');
      case 'editMessageReplyMarkup':
        return this.edit(p, 'markup');
      case 'deleteMessage':
        return this.deleteMessage(p);
      case 'answerCallbackQuery':
        return this.answerCallbackQuery(p);
      case 'getFile':
        return this.getFile(p);
      case 'setWebhook':
        return this.setWebhook(p);
      case 'deleteWebhook':
        this.webhook = undefined;
        if (p.drop_pending_updates === true || p.drop_pending_updates === 'true') this.pendingUpdates = [];
        return ok(true, 'Webhook was deleted');
      case 'getWebhookInfo':
        return ok({
          url: this.webhook?.url ?? '',
          has_custom_certificate: false,
          pending_update_count: this.pendingUpdates.length,
          ...(this.webhook?.lastError
            ? { last_error_date: this.webhook.lastError.date, last_error_message: this.webhook.lastError.message }
            : {}),
        });
      default:
        return fail(404, 'Not Found: method not found');
    }
  }

  // ---- getUpdates ---------------------------------------------------------------------------------------------

  private getUpdates(p: Params, req: IncomingMessage, res: ServerResponse, call: ApiCall): void {
    if (this.webhook) {
      call.status = 409;
      send(
        res,
        fail(
          409,
          "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        ),
      );
      return;
    }
    const offset = Number(p.offset ?? 0);
    const limit = Math.min(100, Math.max(1, Number(p.limit ?? 100)));
    const timeout = Math.max(0, Number(p.timeout ?? 0));
    // A newer poller terminates the one still waiting, as Telegram does with two bot instances.
    for (const poller of this.pollers.splice(0)) {
      clearTimeout(poller.timer);
      poller.respond(
        fail(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running'),
      );
    }
    if (offset > 0) this.pendingUpdates = this.pendingUpdates.filter((u) => Number(u.update_id) >= offset);
    const ready = this.pendingUpdates.slice(0, limit);
    if (ready.length > 0 || timeout === 0) {
      call.status = 200;
      send(res, ok(ready));
      return;
    }
    let answered = false;
    const poller: Poller = {
      offset,
      limit,
      respond: (reply) => {
        if (answered) return;
        answered = true;
        call.status = reply.status;
        send(res, reply);
      },
      timer: setTimeout(() => {
        this.pollers = this.pollers.filter((x) => x !== poller);
        poller.respond(ok([]));
      }, timeout * 1000),
    };
    this.pollers.push(poller);
    req.on('close', () => {
      if (answered) return;
      answered = true;
      clearTimeout(poller.timer);
      this.pollers = this.pollers.filter((x) => x !== poller);
    });
  }

  private wakePollers(): void {
    for (const poller of this.pollers.splice(0)) {
      clearTimeout(poller.timer);
      poller.respond(
        ok(this.pendingUpdates.filter((u) => Number(u.update_id) >= poller.offset).slice(0, poller.limit)),
      );
    }
  }

  // ---- messages -------------------------------------------------------------------------------------------------

  private sendMessage(p: Params): Reply {
    const target = this.target(p);
    if ('status' in target) return target;
    const text = typeof p.text === 'string' ? p.text : '';
    if (text.length === 0) return fail(400, 'Bad Request: message text is empty');
    if (text.length > 4096) return fail(400, 'Bad Request: message is too long');
    const markup = checkMarkup(p.reply_markup);
    if (markup === 'invalid') return fail(400, 'Bad Request: BUTTON_DATA_INVALID');
    const message = this.addMessage(target.chatId, 'text', p, markup);
    message.text = text;
    return ok(this.messageJson(message));
  }

  private sendFile(p: Params, kind: 'photo' | 'document'): Reply {
    const target = this.target(p);
    if ('status' in target) return target;
    const upload = p[kind];
    if (!isUploadedFile(upload)) return fail(400, `Bad Request: there is no ${kind} in the request`);
    const caption = typeof p.caption === 'string' ? p.caption : undefined;
    if (caption !== undefined && caption.length > 1024) return fail(400, 'Bad Request: message caption is too long');
    if (kind === 'photo') {
      if (upload.bytes.length > PHOTO_LIMIT) return fail(400, 'Bad Request: file is too big');
      const size = imageSize(upload.bytes);
      if (!size) return fail(400, 'Bad Request: IMAGE_PROCESS_FAILED');
      const ratio = Math.max(size.width, size.height) / Math.max(1, Math.min(size.width, size.height));
      if (size.width + size.height > 10_000 || ratio > 20) return fail(400, 'Bad Request: PHOTO_INVALID_DIMENSIONS');
    } else if (upload.bytes.length > DOCUMENT_LIMIT) {
      return fail(400, 'Bad Request: file is too big');
    }
    const markup = checkMarkup(p.reply_markup);
    if (markup === 'invalid') return fail(400, 'Bad Request: BUTTON_DATA_INVALID');
    const message = this.addMessage(target.chatId, kind, p, markup);
    message.file = { filename: upload.filename, bytes: upload.bytes };
    this.messageFiles.set(key(target.chatId, message.messageId), this.storeFile(upload.bytes, `${kind}s`, 'png'));
    if (caption !== undefined) message.caption = caption;
    return ok(this.messageJson(message));
  }

  private edit(p: Params, what: 'text' | 'caption' | 'markup'): Reply {
    const target = this.target(p);
    if ('status' in target) return target;
    const messageId = Number(p.message_id);
    const message = this.messages.get(key(target.chatId, messageId));
    if (!message || message.deleted) {
      return this.chat(target.chatId).userMessages.has(messageId)
        ? fail(400, "Bad Request: message can't be edited")
        : fail(400, 'Bad Request: message to edit not found');
    }
    const markup = checkMarkup(p.reply_markup);
    if (markup === 'invalid') return fail(400, 'Bad Request: BUTTON_DATA_INVALID');
    let text = message.text;
    let caption = message.caption;
    if (what === 'text') {
      if (message.kind !== 'text') return fail(400, 'Bad Request: there is no text in the message to edit');
      text = typeof p.text === 'string' ? p.text : '';
      if (text.length === 0) return fail(400, 'Bad Request: message text is empty');
      if (text.length > 4096) return fail(400, 'Bad Request: MESSAGE_TOO_LONG');
    } else if (what === 'caption') {
      if (message.kind === 'text') return fail(400, 'Bad Request: there is no caption in the message to edit');
      caption = typeof p.caption === 'string' ? p.caption : '';
    }
    // Leaving reply_markup out removes the keyboard (widely observed Bot API behaviour).
    if (text === message.text && caption === message.caption && sameMarkup(markup, message.replyMarkup)) {
      return fail(400, NOT_MODIFIED);
    }
    message.text = text;
    message.caption = caption;
    message.replyMarkup = markup;
    message.edits.push({ at: Date.now(), text, caption, ...(markup ? { replyMarkup: markup } : {}) });
    return ok(this.messageJson(message));
  }

  private deleteMessage(p: Params): Reply {
    const target = this.target(p);
    if ('status' in target) return target;
    const message = this.messages.get(key(target.chatId, Number(p.message_id)));
    if (!message || message.deleted) return fail(400, 'Bad Request: message to delete not found');
    message.deleted = true;
    return ok(true);
  }

  private answerCallbackQuery(p: Params): Reply {
    const id = str(p.callback_query_id);
    if (!this.openCallbacks.delete(id)) {
      return fail(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid');
    }
    const text = typeof p.text === 'string' ? p.text : undefined;
    if (text !== undefined && text.length > 200) return fail(400, 'Bad Request: MESSAGE_TOO_LONG');
    const showAlert = p.show_alert === true || p.show_alert === 'true';
    this.callbackAnswers.push({ callbackQueryId: id, ...(text ? { text } : {}), showAlert, at: Date.now() });
    return ok(true);
  }

  private getFile(p: Params): Reply {
    const file = this.files.get(str(p.file_id));
    if (!file) return fail(400, 'Bad Request: invalid file_id');
    if (file.size > DOWNLOAD_LIMIT) return fail(400, 'Bad Request: file is too big');
    return ok({ file_id: file.fileId, file_unique_id: file.uniqueId, file_size: file.size, file_path: file.path });
  }

  private download(res: ServerResponse, token: string, path: string): void {
    const file = token === this.token ? [...this.files.values()].find((f) => f.path === path) : undefined;
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes.length })
      .end(file.bytes);
  }

  private setWebhook(p: Params): Reply {
    const url = typeof p.url === 'string' ? p.url : '';
    if (url === '') {
      this.webhook = undefined;
      return ok(true, 'Webhook was deleted');
    }
    if (!/^https?:\/\//.test(url))
      return fail(400, 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook');
    const secret = p.secret_token === undefined ? undefined : str(p.secret_token);
    if (secret !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
      return fail(400, 'Bad Request: secret token contains unallowed characters');
    }
    this.webhook = { url, ...(secret ? { secret } : {}) };
    if (p.drop_pending_updates === true || p.drop_pending_updates === 'true') this.pendingUpdates = [];
    // Updates waiting for getUpdates now go to the webhook.
    const waiting = this.pendingUpdates.splice(0);
    for (const update of waiting) this.track(this.deliverWebhook(update));
    return ok(true, 'Webhook was set');
  }

  private async deliverWebhook(update: Json): Promise<void> {
    const hook = this.webhook;
    if (!hook) return;
    for (let attempt = 1; attempt <= 3; attempt++) {
      let status: number | 'error';
      try {
        const response = await fetch(hook.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(hook.secret ? { 'x-telegram-bot-api-secret-token': hook.secret } : {}),
          },
          body: JSON.stringify(update),
          signal: AbortSignal.timeout(60_000),
        });
        await response.arrayBuffer();
        status = response.status;
      } catch {
        status = 'error';
      }
      this.webhookDeliveries.push({ updateId: Number(update.update_id), status, at: Date.now() });
      if (typeof status === 'number' && status >= 200 && status < 300) return;
      hook.lastError = { date: Math.floor(Date.now() / 1000), message: `Wrong response from the webhook: ${status}` };
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }

  private track(delivery: Promise<void>): void {
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }

  // ---- state helpers ----------------------------------------------------------------------------------------------

  private chat(chatId: number): ChatState {
    let chat = this.chats.get(chatId);
    if (!chat) {
      chat = { nextMessageId: 1, userMessages: new Set(), blocked: false, type: chatId > 0 ? 'private' : 'supergroup' };
      this.chats.set(chatId, chat);
    }
    return chat;
  }

  private target(p: Params): { chatId: number } | Reply {
    const chatId = Number(p.chat_id);
    if (!Number.isSafeInteger(chatId) || !this.chats.has(chatId)) return fail(400, 'Bad Request: chat not found');
    if (this.chat(chatId).blocked) return fail(403, 'Forbidden: bot was blocked by the user');
    return { chatId };
  }

  private addMessage(chatId: number, kind: BotMessage['kind'], p: Params, markup: ReplyMarkup | undefined): BotMessage {
    const chat = this.chat(chatId);
    const replyTo = (p.reply_parameters as { message_id?: unknown } | undefined)?.message_id;
    const message: BotMessage = {
      chatId,
      messageId: chat.nextMessageId++,
      kind,
      sentAt: Date.now(),
      ...(markup ? { replyMarkup: markup } : {}),
      ...(typeof replyTo === 'number' ? { replyTo } : {}),
      edits: [],
      deleted: false,
    };
    this.messages.set(key(chatId, message.messageId), message);
    return message;
  }

  private userMessage(user: FakeUser, options: MessageOptions = {}, text?: string): Json {
    const chatId = options.chatId ?? user.id;
    const chat = this.chat(chatId);
    const messageId = chat.nextMessageId++;
    chat.userMessages.add(messageId);
    this.userMessageLog.set(key(chatId, messageId), { chatId, messageId, from: user, ...(text ? { text } : {}) });
    const json: Json = {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat: this.chatJson(chatId),
      from: this.userJson(user),
    };
    if (options.replyTo !== undefined) json.reply_to_message = this.repliedMessageJson(chatId, options.replyTo);
    return json;
  }

  /** The message a user replies to, as Telegram embeds it: the bot's (with its content) or another user's. */
  private repliedMessageJson(chatId: number, messageId: number): Json {
    const mine = this.messages.get(key(chatId, messageId));
    if (mine) return this.messageJson(mine);
    const theirs = this.userMessageLog.get(key(chatId, messageId));
    if (!theirs) throw new Error(`no message ${messageId} in chat ${chatId} to reply to`);
    return {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat: this.chatJson(chatId),
      from: this.userJson(theirs.from),
      ...(theirs.text !== undefined ? { text: theirs.text } : {}),
    };
  }

  private chatJson(chatId: number): Json {
    const chat = this.chat(chatId);
    if (chat.type !== 'private') return { id: chatId, type: chat.type, title: chat.title ?? 'Group' };
    return { id: chatId, type: 'private', first_name: this.users.get(chatId)?.firstName ?? 'User' };
  }

  private userJson(user: FakeUser): Json {
    return {
      id: user.id,
      is_bot: false,
      first_name: user.firstName,
      ...(user.languageCode ? { language_code: user.languageCode } : {}),
    };
  }

  private messageJson(message: BotMessage): Json {
    const base: Json = {
      message_id: message.messageId,
      date: Math.floor(message.sentAt / 1000),
      chat: this.chatJson(message.chatId),
      from: { id: this.botId, is_bot: true, first_name: 'Comfy Relay Test', username: this.username },
      ...(message.replyMarkup ? { reply_markup: message.replyMarkup } : {}),
    };
    if (message.kind === 'text') return { ...base, text: message.text };
    const stored =
      this.messageFiles.get(key(message.chatId, message.messageId)) ??
      this.storeFile(Buffer.alloc(0), 'documents', 'bin');
    const media =
      message.kind === 'photo'
        ? { photo: [{ ...photoSize(stored), ...(imageSize(stored.bytes) ?? { width: 1, height: 1 }) }] }
        : {
            document: {
              file_id: stored.fileId,
              file_unique_id: stored.uniqueId,
              file_name: message.file?.filename,
              file_size: stored.size,
            },
          };
    return { ...base, ...media, ...(message.caption !== undefined ? { caption: message.caption } : {}) };
  }

  private storeFile(bytes: Buffer, folder: string, extension: string, declaredSize?: number): StoredFile {
    const n = this.nextFileId++;
    const file: StoredFile = {
      fileId: `AgAC-${n}-${randomBytes(6).toString('hex')}`,
      uniqueId: `AQAD-${n}`,
      path: `${folder}/file_${n}.${extension}`,
      bytes,
      size: declaredSize ?? bytes.length,
    };
    this.files.set(file.fileId, file);
    return file;
  }
}

/** Entities Telegram finds in a text by itself: a leading /command and every @username (offsets in UTF-16). */
function textEntities(text: string): Json[] {
  const entities: Json[] = [];
  const command = /^\/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?/.exec(text);
  if (command) entities.push({ type: 'bot_command', offset: 0, length: command[0].length });
  for (const mention of text.matchAll(/(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}\b/g)) {
    const offset = mention.index ?? 0;
    if (command && offset < command[0].length) continue;
    entities.push({ type: 'mention', offset, length: mention[0].length });
  }
  return entities;
}

function photoSize(file: StoredFile): Json {
  return { file_id: file.fileId, file_unique_id: file.uniqueId, file_size: file.size };
}

export type { UploadedFile };
