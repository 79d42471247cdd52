import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { BotKeys } from '../bot-keys';
import { isLang, type Lang } from '../i18n';

export interface UserSettings {
  lang?: Lang;
  /** Square picture size for text prompts; undefined: the workflow's default. */
  size?: number;
}

export const PICTURE_SIZES: readonly number[] = [512, 768, 1024];

/** Per-user /settings, shared by every replica. */
@Injectable()
export class UserSettingsStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: BotKeys,
  ) {}

  async get(userId: number): Promise<UserSettings> {
    const hash = await this.redis.hgetall(this.keys.userSettings(userId));
    const size = Number(hash.size);
    return {
      ...(isLang(hash.lang) ? { lang: hash.lang } : {}),
      ...(PICTURE_SIZES.includes(size) ? { size } : {}),
    };
  }

  async setLang(userId: number, lang: Lang): Promise<void> {
    await this.redis.hset(this.keys.userSettings(userId), 'lang', lang);
  }

  async setSize(userId: number, size: number): Promise<void> {
    await this.redis.hset(this.keys.userSettings(userId), 'size', String(size));
  }
}
