import type { RedisClient } from '../redis/redis-client';
import { compareStreamIds, parseGroupsReply } from './stream-reply.parser';

/**
 * Trims a stream by age, but never past an entry some group still needs: the oldest pending entry of every
 * group, and the first entry a group has not been delivered yet. XTRIM alone does not consult the PEL.
 */
export class StreamRetention {
  constructor(private readonly redis: RedisClient) {}

  /** Returns the MINID used (entries older than it may be trimmed) and how many entries were removed. */
  async trim(stream: string, maxAgeMs: number, now = Date.now()): Promise<{ minId: string; trimmed: number }> {
    let minId = `${Math.max(0, now - maxAgeMs)}-0`;
    const groups = parseGroupsReply(await this.redis.xinfo('GROUPS', stream).catch(() => []));
    for (const { group: name, lastDeliveredId: lastDelivered, pending } of groups) {
      if (compareStreamIds(lastDelivered, minId) < 0) minId = lastDelivered;
      if (pending > 0) {
        const summary = await this.redis.xpending(stream, name);
        const oldestPending = summary[1];
        if (typeof oldestPending === 'string' && compareStreamIds(oldestPending, minId) < 0) minId = oldestPending;
      }
    }
    if (minId === '0-0') return { minId, trimmed: 0 };
    const trimmed = await this.redis.xtrim(stream, 'MINID', '~', minId);
    return { minId, trimmed };
  }
}
