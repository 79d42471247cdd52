import type Redis from 'ioredis';
import { AckBatcher } from '../../src/streams/ack-batcher';
import { StreamTail } from '../../src/streams/stream-tail';
import { encodeEnvelope, ENVELOPE_FIELD } from '../../src/streams/envelope.codec';
import { pollUntil } from '../support/poll-until';
import { appendRequest, groupPending, makeConsumer, requestEnvelope, StreamKeys } from './stream-harness';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

/** Counts `command` sent on the connections `redis.duplicate()` makes from now on (where blocking reads go). */
function countBlockingCalls(redis: Redis, command: string): { count: number } {
  const counter = { count: 0 };
  const duplicate = redis.duplicate.bind(redis);
  jest.spyOn(redis, 'duplicate').mockImplementation((...args) => {
    const conn = duplicate(...args);
    const call = conn.call.bind(conn) as (...a: unknown[]) => Promise<unknown>;
    (conn as unknown as { call: (...a: unknown[]) => Promise<unknown> }).call = (...a: unknown[]) => {
      if (String(a[0]).toLowerCase() === command.toLowerCase()) counter.count++;
      return call(...a);
    };
    return conn;
  });
  return counter;
}

describe('batched reads and acks (real Redis)', () => {
  let redis: Redis;
  let prefix: string;

  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('acks');
  });

  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  async function pendingEntries(stream: string, count: number): Promise<string[]> {
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < count; i++) await redis.xadd(stream, '*', 'n', String(i));
    const reply = (await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', count, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    return reply[0]![1].map(([id]) => id);
  }

  it('acknowledges the entries settled in one turn with one XACK per stream', async () => {
    const a = `${prefix}a`;
    const b = `${prefix}b`;
    const idsA = await pendingEntries(a, 5);
    const idsB = await pendingEntries(b, 3);
    const xack = jest.spyOn(redis, 'xack');
    const acks = new AckBatcher(redis, 'g');
    await Promise.all([...idsA.map((id) => acks.ack(a, id)), ...idsB.map((id) => acks.ack(b, id))]);
    expect(xack).toHaveBeenCalledTimes(2);
    expect(Number((await redis.xpending(a, 'g'))[0])).toBe(0);
    expect(Number((await redis.xpending(b, 'g'))[0])).toBe(0);
    // A later turn is a new batch.
    const [late] = await pendingEntries(`${prefix}c`, 1);
    await acks.ack(`${prefix}c`, late!);
    expect(xack).toHaveBeenCalledTimes(3);
  });

  it('rejects every ack of a batch whose XACK fails (the entries stay pending)', async () => {
    const stream = `${prefix}wrong`;
    await redis.set(stream, 'not a stream');
    const acks = new AckBatcher(redis, 'g');
    const results = await Promise.allSettled([acks.ack(stream, '1-0'), acks.ack(stream, '2-0')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('a coalescing tail reads a burst in fewer reads than entries, and misses none', async () => {
    const keys = new StreamKeys(prefix);
    // Count the tail's blocking reads on the connection it makes for them.
    const reads = countBlockingCalls(redis, 'XREAD');
    const tail = new StreamTail(redis, [keys.requests], undefined, { blockMs: 1_000, coalesceMs: 100 });
    try {
      const seen: string[] = [];
      tail.subscribe((e) => seen.push(e.envelope.jobId));
      await pollUntil(
        () => reads.count,
        (n) => n >= 1,
      );
      await appendRequest(redis, keys, 'first');
      await pollUntil(
        () => seen.length,
        (n) => n === 1,
      );
      // The tail now waits 100 ms before its next read: the burst arrives meanwhile and is read in one go.
      const readsBefore = reads.count;
      // One append at a time (no pipeline): an uncoalesced tail would wake for nearly every one.
      for (let i = 0; i < 30; i++) {
        await redis.xadd(keys.requests, '*', ENVELOPE_FIELD, encodeEnvelope(requestEnvelope(`j${i}`)));
      }
      await pollUntil(
        () => seen.length,
        (n) => n === 31,
      );
      expect(seen.slice(1)).toEqual(Array.from({ length: 30 }, (_, i) => `j${i}`));
      expect(reads.count - readsBefore).toBeLessThanOrEqual(3);
    } finally {
      await tail.close();
    }
  });

  it('an unwatched tail batches its reads; a subscriber arriving ends the wait at once', async () => {
    const keys = new StreamKeys(prefix);
    // No wait while watched, 10 s while unwatched (far longer than the deadlines below).
    const tail = new StreamTail(redis, [keys.requests], undefined, { blockMs: 1_000, unwatchedCoalesceMs: 10_000 });
    try {
      tail.ensureRunning();
      await pollUntil(
        async () => {
          await appendRequest(redis, keys, 'unwatched');
          return tail.recent('unwatched').length;
        },
        (n) => n > 0,
        { timeoutMs: 5_000, intervalMs: 50 },
      );
      // The tail now waits (nobody listens). A subscriber wakes it: what follows arrives live.
      const seen: string[] = [];
      tail.subscribe((e) => seen.push(e.envelope.jobId));
      await appendRequest(redis, keys, 'live');
      await pollUntil(
        () => seen.includes('live'),
        (ok) => ok,
        { timeoutMs: 3_000 },
      );
    } finally {
      await tail.close();
    }
  });

  it('a consumer group with a read batch reads a burst in a few reads and acks it in a few XACKs', async () => {
    const keys = new StreamKeys(prefix);
    const reads = countBlockingCalls(redis, 'XREADGROUP');
    const xack = jest.spyOn(redis, 'xack');
    const handled: string[] = [];
    const consumer = makeConsumer(
      redis,
      keys,
      async (env) => {
        handled.push(env.jobId);
      },
      { concurrency: 64, readBatchMs: 100 },
    );
    try {
      await consumer.start();
      await appendRequest(redis, keys, 'first');
      await pollUntil(
        () => handled.length,
        (n) => n === 1,
      );
      const readsBefore = reads.count;
      const acksBefore = xack.mock.calls.length;
      for (let i = 0; i < 30; i++) await appendRequest(redis, keys, `j${i}`);
      await pollUntil(
        () => handled.length,
        (n) => n === 31,
      );
      expect(reads.count - readsBefore).toBeLessThanOrEqual(3);
      expect(xack.mock.calls.length - acksBefore).toBeLessThanOrEqual(3);
      await pollUntil(
        () => groupPending(redis, keys.requests, 'gpu'),
        (n) => n === 0,
      );
    } finally {
      await consumer.close(100);
    }
  });
});
