import type { RedisClient } from '../redis/redis-client';
import { tailStreams } from './raw-stream.tail';
import type { StreamKeys } from './stream-keys';
import { parseEntries, parseGroupsReply, type GroupInfo, type RawEntry } from './stream-reply.parser';

/** One XPENDING row of a single entry: who holds it, since when, how often it was delivered. */
export interface PendingRow {
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/**
 * Read-only access to the job streams and their groups for the operator tools, health and the DLQ: the raw
 * client stays here (stream infrastructure), callers get parsed replies. Each method is one command or one
 * pipeline, exactly what its callers sent before.
 */
export class StreamReader {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** XRANGE `start`..`end` (inclusive; `(id` exclusive), at most `count` entries when given. */
  async range(stream: string, start: string, end: string, count?: number): Promise<RawEntry[]> {
    const reply =
      count === undefined
        ? await this.redis.xrange(stream, start, end)
        : await this.redis.xrange(stream, start, end, 'COUNT', count);
    return parseEntries(reply);
  }

  /** XREVRANGE from `end` down to `start`, at most `count` entries. */
  async revRange(stream: string, end: string, start: string, count: number): Promise<RawEntry[]> {
    return parseEntries(await this.redis.xrevrange(stream, end, start, 'COUNT', count));
  }

  /** The stream's newest id, `0-0` when it is empty or missing. */
  async lastId(stream: string): Promise<string> {
    return (await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  }

  length(stream: string): Promise<number> {
    return this.redis.xlen(stream);
  }

  /** The stream's consumer groups; none when the stream does not exist. */
  async groups(stream: string): Promise<GroupInfo[]> {
    return parseGroupsReply(await this.redis.xinfo('GROUPS', stream).catch(() => []));
  }

  /** The groups of each stream in one pipeline; undefined where the read failed (no such stream). */
  async groupsOfEach(streams: readonly string[]): Promise<(GroupInfo[] | undefined)[]> {
    const pipeline = this.redis.pipeline();
    for (const stream of streams) pipeline.xinfo('GROUPS', stream);
    const replies = (await pipeline.exec()) ?? [];
    return streams.map((_, i) => {
      const [err, groups] = replies[i] ?? [new Error('no reply')];
      return err ? undefined : parseGroupsReply(groups);
    });
  }

  /** XPENDING of single entries in one pipeline; undefined where the entry is not pending in that group. */
  async pendingRows(
    asks: readonly { stream: string; group: string; id: string }[],
  ): Promise<(PendingRow | undefined)[]> {
    if (asks.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const { stream, group, id } of asks) pipeline.xpending(stream, group, id, id, 1);
    const replies = (await pipeline.exec()) ?? [];
    return asks.map((_, i) => {
      const [err, value] = replies[i] ?? [null, null];
      const row = !err && Array.isArray(value) ? (value[0] as unknown[] | undefined) : undefined;
      return row ? { consumer: String(row[1]), idleMs: Number(row[2]), deliveries: Number(row[3]) } : undefined;
    });
  }

  /**
   * The failed attempts the stream consumer recorded for entries still being retried (StreamKeys.attempts), one
   * pipeline; undefined where the read failed.
   */
  async attemptHistories(
    entries: readonly { group: string; stream: string; id: string }[],
  ): Promise<(string[] | undefined)[]> {
    if (entries.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const { group, stream, id } of entries) pipeline.lrange(this.keys.attempts(group, stream, id), 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    return entries.map((_, i) => {
      const [err, value] = replies[i] ?? [new Error('no reply')];
      return err || !Array.isArray(value) ? undefined : (value as string[]);
    });
  }

  /** Follows streams from their current end (XREAD, no group) until `signal` aborts; see tailStreams. */
  follow(streams: readonly string[], signal: AbortSignal): AsyncGenerator<{ stream: string; entry: RawEntry }> {
    return tailStreams(this.redis, streams, signal);
  }
}
