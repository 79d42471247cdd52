import type Redis from 'ioredis';
import { STREAM_PEEK_NEXT, STREAM_READ_NEXT_UP_TO } from '../../src/redis/scripts';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

/**
 * The ShardArbiter's two scripts on a real Redis: the next entry no consumer of the group has read (after the
 * group's last-delivered-id, whoever read before it), and a read of it that only happens while its tag is still
 * the one the arbiter chose.
 */
describe('STREAM_PEEK_NEXT and STREAM_READ_NEXT_UP_TO (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let priority: string;
  let normal: string;

  beforeEach(async () => {
    redis = testRedis();
    prefix = uniquePrefix('peek');
    priority = `${prefix}jobs:requests:priority`;
    normal = `${prefix}jobs:requests`;
    for (const stream of [priority, normal]) await redis.xgroup('CREATE', stream, 'gpu', '0', 'MKSTREAM');
  });

  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const peek = async (streams = [priority, normal]) =>
    (await STREAM_PEEK_NEXT.run(redis, streams, ['gpu'])) as [number, string] | null;
  /** [read, index, id, fields, next index, next tag] */
  const readUpTo = async (tag: string, consumer = 'c1', streams = [priority, normal]) =>
    (await STREAM_READ_NEXT_UP_TO.run(redis, streams, ['gpu', consumer, tag])) as [
      number,
      number,
      string,
      string[],
      number,
      string,
    ];
  const add = (stream: string, fields: string[]) => redis.xadd(stream, '*', 'e', '{}', ...fields);

  it('finds nothing in empty streams, or in a stream the group has read to its end', async () => {
    expect(await peek()).toBeNull();
    expect(await peek([`${prefix}missing`])).toBeNull();
    await add(normal, ['tag', '4']);
    await redis.xreadgroup('GROUP', 'gpu', 'someone', 'COUNT', '1', 'STREAMS', normal, '>');
    expect(await peek()).toBeNull();
    expect(await readUpTo('100')).toEqual([0, 0, '', [], 0, '']);
  });

  it('names the stream whose next unread entry has the lowest tag, past what any consumer has read', async () => {
    await add(normal, ['tag', '8']);
    await add(normal, ['tag', '12']);
    await add(priority, ['tag', '9']);
    expect(await peek()).toEqual([2, '8']);
    // A peer reads the 8: the next unread of the normal stream is the 12, so the priority stream's 9 is lowest.
    await redis.xreadgroup('GROUP', 'gpu', 'peer', 'COUNT', '1', 'STREAMS', normal, '>');
    expect(await peek()).toEqual([1, '9']);
    // Another group's reads do not count.
    await redis.xgroup('CREATE', priority, 'projector', '0');
    await redis.xreadgroup('GROUP', 'projector', 'p', 'COUNT', '5', 'STREAMS', priority, '>');
    expect(await peek()).toEqual([1, '9']);
  });

  it('puts an entry without a tag first', async () => {
    await add(normal, ['tag', '0']);
    await add(priority, []);
    expect(await peek()).toEqual([1, '']);
  });

  it("reads the shard's lowest next entry while its tag is at most the chosen one, and answers the next after it", async () => {
    const first = await add(normal, ['tag', '8']);
    const second = await add(normal, ['tag', '12']);
    const prio = await add(priority, ['tag', '10']);
    expect(await readUpTo('8')).toEqual([1, 2, first, ['e', '{}', 'tag', '8'], 1, '10']);
    // The 8 was read (by c1): the chosen tag 8 is gone and the lowest is now the priority stream's 10.
    expect(await readUpTo('8', 'c2')).toEqual([0, 0, '', [], 1, '10']);
    const pending = (await redis.xpending(normal, 'gpu', '-', '+', 10)) as [string, string][];
    expect(pending.map(([id, consumer]) => [id, consumer])).toEqual([[first, 'c1']]);
    expect(await readUpTo('10', 'c2')).toEqual([1, 1, prio, ['e', '{}', 'tag', '10'], 2, '12']);
    expect(await readUpTo('12', 'c2')).toEqual([1, 2, second, ['e', '{}', 'tag', '12'], 0, '']);
    // An untagged entry is read whatever the chosen tag ('-inf' included).
    const untagged = await add(normal, []);
    expect(await readUpTo('-inf')).toEqual([1, 2, untagged, ['e', '{}'], 0, '']);
  });
});
