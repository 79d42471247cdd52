import type { StreamKeys } from '../../streams/stream-keys';

/**
 * Every Redis key the bot writes, under `<STREAM_PREFIX>bot:`. Built here (not in StreamKeys) because only the
 * bot reads them; the prefix still comes from the one place every key starts.
 */
export class BotKeys {
  readonly base: string;

  constructor(keys: StreamKeys) {
    this.base = `${keys.prefix}bot:`;
  }

  /** Hash: the Telegram side of one job (chat, status message, what was asked, phase). */
  job(jobId: string): string {
    return `${this.base}job:${jobId}`;
  }
  /** Sorted set of jobs whose status message is still live (not final), scored by registration time. */
  get live(): string {
    return `${this.base}live`;
  }
  /** Which replica refreshes a job's status message (sticky lease). */
  refreshOwner(jobId: string): string {
    return `${this.base}job:${jobId}:owner`;
  }
  /** Mutex held around every edit of a job's status message, so edits land in order. */
  editLock(jobId: string): string {
    return `${this.base}job:${jobId}:edit`;
  }
  /** Hash: the delivery ledger of a job's result messages. */
  delivery(jobId: string): string {
    return `${this.base}delivery:${jobId}`;
  }
  /** Which stream entry is delivering a job's result right now. */
  deliveryLock(jobId: string): string {
    return `${this.base}delivery:${jobId}:lock`;
  }
  /** Sliding window of message sends/edits across replicas. */
  get budgetWindow(): string {
    return `${this.base}budget:window`;
  }
  /** Set with a PX expiry while Telegram asked every replica to wait (429 retry_after). */
  get budgetPause(): string {
    return `${this.base}budget:pause`;
  }
  /** Set with a PX expiry after an edit in a chat: the per-chat edit interval. */
  chatEditSlot(chatId: number): string {
    return `${this.base}budget:chat:${chatId}`;
  }
  /** Sorted set: the chat's status messages (by job) waiting for an edit, scored by their last ask. */
  chatEditWaiting(chatId: number): string {
    return `${this.base}budget:chat:${chatId}:waiting`;
  }
  /** Hash: when each of the chat's status messages (by job) last got the chat's edit slot. */
  chatEditTurns(chatId: number): string {
    return `${this.base}budget:chat:${chatId}:turns`;
  }
  /** Present while a chat has blocked the bot (403). */
  chatBlocked(chatId: number): string {
    return `${this.base}chat:${chatId}:blocked`;
  }
  userSettings(userId: number): string {
    return `${this.base}user:${userId}:settings`;
  }
}
