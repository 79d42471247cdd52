import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { LEASE_RELEASE, LEASE_TAKE } from '../../../redis/scripts';
import { REDIS } from '../../../streams/redis.provider';
import { BotKeys } from '../bot-keys';

/** `unanswered`: the call got no answer (a timeout, a dropped connection): it may or may not have reached the chat. */
export type OutputState = 'sending' | 'sent' | 'failed' | 'unanswered';
const STATES: ReadonlySet<string> = new Set<OutputState>(['sending', 'sent', 'failed', 'unanswered']);

export interface LedgerEntry {
  outputs: Map<number, { state: OutputState; messageId?: number }>;
  /** Set once the job can't be delivered (chat blocked, result expired, Telegram refused it). */
  undeliverable?: string;
  /** `job.delivered` was published. */
  announced: boolean;
}

const LEDGER_TTL_SECONDS = 7 * 24 * 3600;
/** Long enough for a slow upload with 429 waits; a dead holder's lock is taken over by its own entry's redelivery. */
const LOCK_TTL_MS = 10 * 60_000;

/**
 * The delivery ledger (`bot:delivery:<job>`): per result image, "sending" is written BEFORE the Bot API call and
 * "sent" + the message id right after it returns. A redelivered `job.completed` reads it first: "sent" → not sent
 * again; "sending" → the previous attempt died inside the call, and whether Telegram got it is unknowable (the
 * Bot API has no idempotency key and a bot can't read its chat history) — see ResultDeliveryService for the choice.
 */
@Injectable()
export class DeliveryLedger {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: BotKeys,
  ) {}

  async get(jobId: string): Promise<LedgerEntry> {
    const hash = await this.redis.hgetall(this.keys.delivery(jobId));
    const outputs = new Map<number, { state: OutputState; messageId?: number }>();
    for (const [field, value] of Object.entries(hash)) {
      const match = /^s(\d+)$/.exec(field);
      if (!match || !STATES.has(value)) continue;
      const index = Number(match[1]);
      const messageId = hash[`m${index}`];
      outputs.set(index, { state: value as OutputState, ...(messageId ? { messageId: Number(messageId) } : {}) });
    }
    return { outputs, undeliverable: hash.undeliverable || undefined, announced: hash.announced === '1' };
  }

  async markSending(jobId: string, index: number): Promise<void> {
    await this.write(jobId, { [`s${index}`]: 'sending', [`at${index}`]: new Date().toISOString() });
  }

  async markSent(jobId: string, index: number, messageId: number): Promise<void> {
    await this.write(jobId, { [`s${index}`]: 'sent', [`m${index}`]: String(messageId) });
  }

  /** Telegram refused the call: nothing reached the chat, the next attempt may send. */
  async markFailed(jobId: string, index: number): Promise<void> {
    await this.write(jobId, { [`s${index}`]: 'failed' });
  }

  /** The call got no answer: unknowable whether the chat got it (see ResultDeliveryService for what happens next). */
  async markUnanswered(jobId: string, index: number): Promise<void> {
    await this.write(jobId, { [`s${index}`]: 'unanswered' });
  }

  async markUndeliverable(jobId: string, reason: string): Promise<void> {
    await this.write(jobId, { undeliverable: reason.slice(0, 200) });
  }

  async markAnnounced(jobId: string): Promise<void> {
    await this.write(jobId, { announced: '1' });
  }

  async lock(jobId: string, holder: string): Promise<boolean> {
    // Free, expired, or already held by the same entry — the stream hands an entry to one live consumer at a
    // time, so a redelivered entry means its previous holder died.
    const current = await LEASE_TAKE.run(this.redis, [this.keys.deliveryLock(jobId)], [holder, String(LOCK_TTL_MS)]);
    return current === null;
  }

  async unlock(jobId: string, holder: string): Promise<void> {
    await LEASE_RELEASE.run(this.redis, [this.keys.deliveryLock(jobId)], [holder]);
  }

  private async write(jobId: string, fields: Record<string, string>): Promise<void> {
    const key = this.keys.delivery(jobId);
    await this.redis.multi().hset(key, fields).expire(key, LEDGER_TTL_SECONDS).exec();
  }
}
