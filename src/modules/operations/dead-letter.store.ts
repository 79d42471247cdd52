import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../redis/redis-client';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { parseEntries, type RawEntry } from '../../streams/stream-reply.parser';

/**
 * The dead-letter stream (`jobs:dlq`, appended by the stream consumers' DeadLetterWriter) and the re-drive marker
 * of each entry (the idempotency key of the job its re-drive created): what the operators' DLQ commands read.
 *
 * With STREAM_SHARDS > 1 every shard has its own DLQ, and an entry is named `<shard>/<entry id>` (`3/1700…-0`)
 * wherever operators see or give one; with one shard, the plain entry id as before.
 */
@Injectable()
export class DeadLetterStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  get shards(): readonly StreamKeys[] {
    return this.keys.shards;
  }

  /** The operator's name of an entry of `keys`' DLQ. */
  qualify(keys: StreamKeys, id: string): string {
    return this.keys.shardCount > 1 ? `${keys.shard}/${id}` : id;
  }

  /** The shard and stream id an operator's entry name points at. */
  locate(name: string): { keys: StreamKeys; id: string } {
    const match = /^(\d+)\/(.+)$/.exec(name);
    if (this.keys.shardCount <= 1 || !match) return { keys: this.keys, id: name };
    const shard = Number(match[1]);
    return shard < this.keys.shardCount
      ? { keys: this.keys.forShard(shard), id: match[2] }
      : { keys: this.keys, id: name };
  }

  /** Up to `count` entries of one shard's DLQ from `end` (inclusive; `(id` exclusive) backwards. */
  async newestFrom(end: string, count: number, keys = this.keys): Promise<RawEntry[]> {
    return parseEntries(await this.redis.xrevrange(keys.dlq, end, '-', 'COUNT', count));
  }

  /** Up to `count` entries of one shard's DLQ from `start` (inclusive; `(id` exclusive) onwards. */
  async oldestFrom(start: string, count: number, keys = this.keys): Promise<RawEntry[]> {
    return parseEntries(await this.redis.xrange(keys.dlq, start, '+', 'COUNT', count));
  }

  /** The entry an operator's name points at (its id in the stream, not the name). */
  async entry(name: string): Promise<RawEntry | undefined> {
    const { keys, id } = this.locate(name);
    return parseEntries(await this.redis.xrange(keys.dlq, id, id))[0];
  }

  async size(): Promise<number> {
    const sizes = await Promise.all(this.keys.shards.map((k) => this.redis.xlen(k.dlq)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** The idempotency key a re-drive of the entry submits with: set once, it names the job the re-drive created. */
  markerKey(name: string): string {
    const { keys, id } = this.locate(name);
    return keys.idempotency('redrive', id);
  }

  /** Each entry's marker (`<jobId>|<fingerprint>`), null where it was never re-driven or the read failed. */
  async markers(names: readonly string[]): Promise<(string | null)[]> {
    // Single GETs, batched by the client (per primary on a cluster, where shards are on several).
    return Promise.all(names.map((name) => this.redis.get(this.markerKey(name)).catch(() => null)));
  }
}
