/** What the fake records and hands back to tests (Bot API objects are plain JSON, as on the wire). */

export interface InlineButton {
  text: string;
  callback_data?: string;
  url?: string;
}

export interface ReplyMarkup {
  inline_keyboard: InlineButton[][];
}

export interface MessageEdit {
  at: number;
  text?: string;
  caption?: string;
  replyMarkup?: ReplyMarkup;
}

/** A message the bot sent, with its current content and every edit that changed it. */
export interface BotMessage {
  chatId: number;
  messageId: number;
  kind: 'text' | 'photo' | 'document';
  sentAt: number;
  text?: string;
  caption?: string;
  replyMarkup?: ReplyMarkup;
  replyTo?: number;
  file?: { filename: string; bytes: Buffer };
  edits: MessageEdit[];
  deleted: boolean;
}

export interface ApiCall {
  method: string;
  at: number;
  chatId?: number;
  status: number;
}

export interface CallbackAnswer {
  callbackQueryId: string;
  text?: string;
  showAlert?: boolean;
  at: number;
}

export interface FakeUser {
  id: number;
  firstName: string;
  languageCode?: string;
}

export interface RateLimitRule {
  /** Fail this many calls (of the matching methods) with 429. */
  calls?: number;
  /** Or: fail every matching call until this much time has passed. */
  forMs?: number;
  retryAfter: number;
  /** Default: every method that sends or edits a message. */
  methods?: readonly string[];
}

export type ChatType = 'private' | 'group' | 'supergroup';

/** Where a user's message goes (default: their private chat) and what it replies to. */
export interface MessageOptions {
  chatId?: number;
  replyTo?: number;
}

export interface ErrorRule {
  methods: readonly string[];
  calls: number;
  /** An HTTP status with Telegram's error envelope, e.g. 500 or 502. */
  status: number;
  description?: string;
}

export interface WebhookDelivery {
  updateId: number;
  status: number | 'error';
  at: number;
}

export interface InjectedUpdate {
  updateId: number;
  /** The Update as sent (to replay it, e.g. to a second replica). */
  raw: Record<string, unknown>;
  messageId?: number;
  callbackQueryId?: string;
}
