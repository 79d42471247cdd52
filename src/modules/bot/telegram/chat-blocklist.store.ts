import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { BotKeys } from '../bot-keys';

/** A blocked chat is forgotten after this long even if the user never writes again. */
const BLOCK_TTL_SECONDS = 7 * 24 * 3600;

/**
 * Chats that answered 403 (the user blocked the bot, or the bot was removed): nothing more is sent there until
 * the user writes to the bot again, so a blocked chat never costs retries or budget.
 */
@Injectable()
export class ChatBlocklistStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: BotKeys,
  ) {}

  async mark(chatId: number): Promise<void> {
    await this.redis.set(this.keys.chatBlocked(chatId), '1', 'EX', BLOCK_TTL_SECONDS);
  }

  async isBlocked(chatId: number): Promise<boolean> {
    return (await this.redis.exists(this.keys.chatBlocked(chatId))) === 1;
  }

  async clear(chatId: number): Promise<void> {
    await this.redis.del(this.keys.chatBlocked(chatId));
  }
}
