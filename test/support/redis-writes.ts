import type Redis from 'ioredis';
import type { RedisClient } from '../../src/redis/redis-client';

/**
 * What a (non-cluster) client writes to its socket, one string per write: with auto-pipelining, the commands of one
 * batch go in one write, so "in the same write" is "in the same round trip". `stop()` restores the socket.
 */
export function recordWrites(client: RedisClient): { writes: string[]; stop(): void } {
  const stream = (client as Redis).stream;
  const original = stream.write;
  const writes: string[] = [];
  stream.write = function (this: typeof stream, chunk: unknown, ...rest: unknown[]) {
    writes.push(Buffer.isBuffer(chunk) ? chunk.toString('latin1') : String(chunk));
    return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof stream.write;
  return { writes, stop: () => void (stream.write = original) };
}
