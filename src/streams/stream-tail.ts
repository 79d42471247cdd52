import { duplicateConnection, type RedisClient } from '../redis/redis-client';
import { blockingCall } from './blocking-call';
import { silentLogger, type Logger } from '../common/logger';
import { sleep } from '../common/sleep.util';
import { decodeEntry } from './envelope.codec';
import type { AnyJobEnvelope } from './job-event.types';
import { errorMessage } from './stream-errors';
import { parseReadReply } from './stream-reply.parser';

export interface TailedEvent {
  stream: string;
  id: string;
  envelope: AnyJobEnvelope;
}

export type TailListener = (event: TailedEvent) => void;

const RECENT_LIMIT = 5_000;

export interface StreamTailOptions {
  /** XREAD BLOCK (ms). */
  blockMs?: number;
  /**
   * After a read that returned entries, wait this long before the next one, so a busy stream is read in batches
   * (one XREAD per batch, not per entry). For listeners that tolerate that much delay (cancel fan-out, metrics),
   * not for live progress. Default 0.
   */
  coalesceMs?: number;
  /**
   * The same while nobody listens (the tail only keeps its recent buffer for subscribers to come): a subscriber
   * arriving ends the wait at once. Default: coalesceMs.
   */
  unwatchedCoalesceMs?: number;
}

/**
 * One XREAD (no group) per process over the given streams, fanned out to in-process listeners: SSE clients and
 * the gpu role's cancel listener share it instead of each holding a blocking connection. Keeps the most recent
 * events so a subscriber that arrives late can catch up on what the projection has not recorded yet.
 */
export class StreamTail {
  private readonly listeners = new Set<TailListener>();
  private readonly recentEvents: TailedEvent[] = [];
  private readonly stop = new AbortController();
  private readonly blocking: RedisClient[] = [];
  private loop?: Promise<void>;
  private closed = false;
  /** Ends batching waits early when a subscriber arrives: one per shard's read loop that is coalescing now. */
  private readonly waking = new Set<AbortController>();

  private readonly blockMs: number;
  private readonly coalesceMs: number;
  private readonly unwatchedCoalesceMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly streams: readonly string[],
    private readonly log: Logger = silentLogger,
    options: StreamTailOptions = {},
  ) {
    this.blockMs = options.blockMs ?? 5_000;
    this.coalesceMs = options.coalesceMs ?? 0;
    this.unwatchedCoalesceMs = options.unwatchedCoalesceMs ?? this.coalesceMs;
  }

  subscribe(listener: TailListener): () => void {
    this.listeners.add(listener);
    for (const waking of this.waking) waking.abort();
    this.ensureRunning();
    return () => this.listeners.delete(listener);
  }

  /** Starts tailing now (from the current end), so later subscribers can see events appended from here on. */
  ensureRunning(): void {
    if (this.loop || this.closed) return;
    // One XREAD per hash slot: a read across slots is refused by a Redis Cluster (STREAM_SHARDS: one per shard).
    const loops = sameSlotGroups(this.streams).map((streams) => {
      const conn = duplicateConnection(this.redis, {
        maxRetriesPerRequest: null,
        connectionName: 'stream-tail',
        enableAutoPipelining: false,
      });
      conn.on('error', () => undefined);
      this.blocking.push(conn);
      return this.run(conn, streams);
    });
    this.loop = Promise.all(loops).then(() => undefined);
  }

  recent(jobId: string): TailedEvent[] {
    return this.recentEvents.filter((e) => e.envelope.jobId === jobId);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop.abort();
    for (const conn of this.blocking) conn.disconnect();
    await this.loop?.catch(() => undefined);
  }

  private async run(conn: RedisClient, streams: readonly string[]): Promise<void> {
    const positions = streams.map(() => '$');
    let resolved = false;
    while (!this.closed) {
      try {
        if (!resolved) {
          // Turn '$' into concrete ids once, so nothing appended between two reads is skipped.
          for (let i = 0; i < streams.length; i++) {
            const last = await this.redis.xrevrange(streams[i], '+', '-', 'COUNT', 1);
            positions[i] = last[0]?.[0] ?? '0-0';
          }
          resolved = true;
        }
        const reply = await blockingCall(conn, this.blockMs + 10_000, 'xread', [
          'COUNT',
          '500',
          'BLOCK',
          String(this.blockMs),
          'STREAMS',
          ...streams,
          ...positions,
        ]);
        let read = 0;
        for (const { stream, entries } of parseReadReply(reply)) {
          const index = streams.indexOf(stream);
          read += entries.length;
          for (const entry of entries) {
            if (index >= 0) positions[index] = entry.id;
            if (!entry.fields) continue;
            const decoded = decodeEntry(entry.fields);
            if (decoded.ok) this.emit({ stream, id: entry.id, envelope: decoded.envelope });
          }
        }
        if (read > 0) await this.batchingWait();
      } catch (err) {
        if (this.closed) break;
        this.log.debug({ err: errorMessage(err) }, 'stream tail read failed; retrying');
        await sleep(250, this.stop.signal);
      }
    }
  }

  private async batchingWait(): Promise<void> {
    const ms = this.listeners.size > 0 ? this.coalesceMs : this.unwatchedCoalesceMs;
    if (ms <= 0) return;
    const waking = new AbortController();
    this.waking.add(waking);
    try {
      await sleep(ms, AbortSignal.any([this.stop.signal, waking.signal]));
    } finally {
      this.waking.delete(waking);
    }
  }

  private emit(event: TailedEvent): void {
    this.recentEvents.push(event);
    if (this.recentEvents.length > RECENT_LIMIT) this.recentEvents.splice(0, this.recentEvents.length - RECENT_LIMIT);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'stream tail listener threw');
      }
    }
  }
}

/**
 * Streams grouped by the hash tag Redis would hash them by (the first non-empty {…} of the name; the whole name
 * without one): streams of one group are in one slot and can be read by one XREAD on a cluster. Streams without a
 * tag go together, as on a single Redis (a cluster refuses those at start: STREAM_PREFIX needs a tag there).
 */
export function sameSlotGroups(streams: readonly string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const stream of streams) {
    const tag = /\{([^{}]+)\}/.exec(stream)?.[1] ?? '';
    groups.set(tag, [...(groups.get(tag) ?? []), stream]);
  }
  return [...groups.values()];
}
