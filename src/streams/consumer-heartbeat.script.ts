import type Redis from 'ioredis';
import { CONSUMER_HEARTBEAT } from '../redis/scripts';

export class ConsumerHeartbeat {
  constructor(private readonly redis: Redis) {}

  /** Returns the ids no longer owned by `consumer`. */
  async beat(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await CONSUMER_HEARTBEAT.run(this.redis, [stream], [group, consumer, ...ids])) as string[];
  }
}
