import { duplicateConnection, type RedisClient } from '../redis/redis-client';
import { parseReadReply, type RawEntry } from './stream-reply.parser';

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
    const positions = await Promise.all(
      streams.map(async (s) => (await redis.xrevrange(s, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'),
    );
    while (!signal.aborted) {
      let reply: unknown;
      try {
        reply = await conn.call(
          'XREAD',
          'COUNT',
          '100',
          'BLOCK',
          String(BLOCK_MS),
          'STREAMS',
          ...streams,
          ...positions,
        );
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      for (const { stream, entries } of parseReadReply(reply)) {
        const index = streams.indexOf(stream);
        for (const entry of entries) {
          if (index >= 0) positions[index] = entry.id;
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
