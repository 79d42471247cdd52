import Redis from 'ioredis';
import { BLOB_FORGET, JOB_DISPATCH } from '../../src/redis/scripts';
import { StreamKeys } from '../../src/streams/stream-keys';
import { TestRedisServer } from '../support/redis-server';
import { uniquePrefix } from '../support/test-redis';
import { describeTaggedPipeline } from './support/tagged-pipeline.suite';

/**
 * Keys ready for a Redis Cluster (docs/job-state.md, "Keys and hash slots"): with a hash tag in STREAM_PREFIX every
 * key a script, a transaction or a multi-key command touches sits in one slot. Checked on a one-node cluster, where
 * Redis refuses any script (they all carry a `#!lua` shebang) or command that crosses slots — the whole pipeline,
 * API and Telegram, queue and cancel, blobs and the operator CLI run on it.
 */
describe('keys and hash slots (one-node Redis Cluster)', () => {
  const server = new TestRedisServer({ cluster: true });
  let redis: Redis;

  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    redis?.disconnect();
    await server.stop();
  });

  it('the server refuses a script whose keys cross slots: without a hash tag in the prefix it fails', async () => {
    const args = ['0123abcd', 'token'];
    const keysOf = (k: StreamKeys) => [
      k.blobDeleting('0123abcd'),
      k.blobDue,
      k.blobSizes,
      k.blobDeleting('x'),
      k.blobTotal,
    ];
    await expect(BLOB_FORGET.run(redis, keysOf(new StreamKeys('plain:')), args)).rejects.toThrow(/same slot/i);
    await expect(BLOB_FORGET.run(redis, keysOf(new StreamKeys(uniquePrefix('slots'))), args)).resolves.toBe(-1);
  });

  it('and one that builds a key outside the slot of its declared keys (the shebang makes Redis check it)', async () => {
    const tagged = new StreamKeys(uniquePrefix('slots'));
    // The keys it builds come from the prefix argument: an untagged one puts them in other slots.
    await expect(JOB_DISPATCH.run(redis, [tagged.queue, tagged.queuePending], ['plain:', 2])).rejects.toThrow(
      /do not hash to the same slot/,
    );
    await expect(JOB_DISPATCH.run(redis, [tagged.queue, tagged.queuePending], [tagged.prefix, 2])).resolves.toBe(0);
  });

  describeTaggedPipeline(() => ({ REDIS_URL: server.url }), uniquePrefix('cluster'));
});
