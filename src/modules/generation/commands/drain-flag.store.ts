import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';

/**
 * The drain flag (`control:drain`): while it is set, submits are refused. Set and cleared by the operators'
 * DrainService, checked by every submit; its value says who set it and when.
 */
@Injectable()
export class DrainFlagStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async isSet(): Promise<boolean> {
    return (await this.redis.exists(this.keys.drainFlag)) === 1;
  }

  /** The flag's value, null when it is not set. */
  read(): Promise<string | null> {
    return this.redis.get(this.keys.drainFlag);
  }

  async set(value: string): Promise<void> {
    await this.redis.set(this.keys.drainFlag, value);
  }

  async clear(): Promise<void> {
    await this.redis.del(this.keys.drainFlag);
  }
}
