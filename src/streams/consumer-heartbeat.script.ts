import type { RedisClient } from '../redis/redis-client';
import { CONSUMER_HAND_OFF, CONSUMER_HEARTBEAT, CONSUMER_REDELIVER_OWN } from '../redis/scripts';

export class ConsumerHeartbeat {
  constructor(private readonly redis: RedisClient) {}

  /** Returns the ids no longer owned by `consumer`. */
  async beat(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await CONSUMER_HEARTBEAT.run(this.redis, [stream], [group, consumer, ...ids])) as string[];
  }

  /**
   * Delivers an entry this consumer owns once more (delivery counter + 1). `lost`: another consumer has it;
   * `deleted`: it left the stream meanwhile.
   */
  async redeliverOwn(
    stream: string,
    group: string,
    consumer: string,
    id: string,
  ): Promise<{ deliveries: number; fields: string[] } | 'lost' | 'deleted'> {
    const reply = (await CONSUMER_REDELIVER_OWN.run(this.redis, [stream], [group, consumer, id])) as
      [number, string[]] | [number] | null;
    if (!reply) return 'lost';
    if (reply[0] === -1 || reply.length < 2) return 'deleted';
    return { deliveries: reply[0], fields: reply[1] as string[] };
  }

  /** Passes an entry `from` owns to `to` and wakes `to` on `channel` (see CONSUMER_HAND_OFF). */
  async handOff(
    stream: string,
    group: string,
    from: string,
    to: string,
    id: string,
    channel: string,
  ): Promise<'handed' | 'lost' | 'deleted'> {
    const reply = Number(await CONSUMER_HAND_OFF.run(this.redis, [stream], [group, from, to, id, channel]));
    return reply === 1 ? 'handed' : reply === 0 ? 'lost' : 'deleted';
  }
}
