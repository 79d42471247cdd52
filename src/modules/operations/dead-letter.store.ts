import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../redis/redis-client';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { parseEntries, type RawEntry } from '../../streams/stream-reply.parser';

/**
 * The dead-letter stream (`jobs:dlq`, appended by the stream consumers' DeadLetterWriter) and the re-drive marker
 * of each entry (the idempotency key of the job its re-drive created): what the operators' DLQ commands read.
 */
@Injectable()
export class DeadLetterStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** Up to `count` entries from `end` (inclusive; `(id` exclusive) backwards. */
  async newestFrom(end: string, count: number): Promise<RawEntry[]> {
    return parseEntries(await this.redis.xrevrange(this.keys.dlq, end, '-', 'COUNT', count));
  }

  /** Up to `count` entries from `start` (inclusive; `(id` exclusive) onwards. */
  async oldestFrom(start: string, count: number): Promise<RawEntry[]> {
    return parseEntries(await this.redis.xrange(this.keys.dlq, start, '+', 'COUNT', count));
  }

  async entry(id: string): Promise<RawEntry | undefined> {
    return parseEntries(await this.redis.xrange(this.keys.dlq, id, id))[0];
  }

  size(): Promise<number> {
    return this.redis.xlen(this.keys.dlq);
  }

  /** The idempotency key a re-drive of the entry submits with: set once, it names the job the re-drive created. */
  markerKey(dlqEntryId: string): string {
    return this.keys.idempotency('redrive', dlqEntryId);
  }

  /** Each entry's marker (`<jobId>|<fingerprint>`), null where it was never re-driven or the read failed. */
  async markers(dlqEntryIds: readonly string[]): Promise<(string | null)[]> {
    const pipeline = this.redis.pipeline();
    for (const id of dlqEntryIds) pipeline.get(this.markerKey(id));
    return ((await pipeline.exec()) ?? []).map(([err, value]) => (err ? null : (value as string | null)));
  }
}
