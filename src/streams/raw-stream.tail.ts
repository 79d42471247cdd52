import { duplicateConnection, type RedisClient } from '../redis/redis-client';
import { parseReadReply, type RawEntry } from './stream-reply.parser';
import { sameSlotGroups } from './stream-tail';

const BLOCK_MS = 1_000;

/**
 * Follows streams from their current end with XREAD (no group: it changes nothing), yielding raw entries so
 * dead letters and malformed entries show as they are. Stops when `signal` aborts; the blocking read is on its
 * own connection, which closing drops.
 */
export async function* tailStreams(
  redis: RedisClient,
  streams: readonly string[],
  signal: AbortSignal,
): AsyncGenerator<{ stream: string; entry: RawEntry }> {
  const conn = duplicateConnection(redis, {
    maxRetriesPerRequest: null,
    enableAutoPipelining: false,
    connectionName: 'cli-tail',
  });
  conn.on('error', () => undefined);
  const stop = () => conn.disconnect();
  signal.addEventListener('abort', stop, { once: true });
  try {
    // Concrete ids instead of '$', so nothing appended between two reads is skipped.
    const positions = new Map(
      await Promise.all(
        streams.map(async (s) => [s, (await redis.xrevrange(s, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'] as const),
      ),
    );
    // One XREAD per hash slot (STREAM_SHARDS on a cluster: per shard), in turn, the block time shared between them.
    const groups = sameSlotGroups(streams);
    const blockMs = Math.max(50, Math.ceil(BLOCK_MS / groups.length));
    for (let turn = 0; !signal.aborted; turn++) {
      const group = groups[turn % groups.length];
      let reply: unknown;
      try {
        reply = await conn.call(
          'xread',
          'COUNT',
          '100',
          'BLOCK',
          String(blockMs),
          'STREAMS',
          ...group,
          ...group.map((s) => positions.get(s) ?? '0-0'),
        );
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      for (const { stream, entries } of parseReadReply(reply)) {
        for (const entry of entries) {
          if (positions.has(stream)) positions.set(stream, entry.id);
          yield { stream, entry };
          if (signal.aborted) return;
        }
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
    conn.disconnect();
  }
}
