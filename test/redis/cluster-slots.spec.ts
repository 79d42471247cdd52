import Redis from 'ioredis';
import { BLOB_FORGET, JOB_DISPATCH } from '../../src/redis/scripts';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { TestRedisServer } from '../support/redis-server';
import { uniquePrefix } from '../support/test-redis';
import { ALL_ROLES, testPng, waitForPolling, waitForResults } from '../bot/support/bot-harness';
import { cli } from '../cli/cli-harness';

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

  describe('the pipeline on a tagged prefix', () => {
    let fake: FakeTelegram;
    let app: TestApp;
    const prefix = uniquePrefix('cluster');

    beforeAll(async () => {
      fake = new FakeTelegram();
      await fake.start();
      app = await startTestApp(
        {
          REDIS_URL: server.url,
          ROLE: ALL_ROLES,
          TELEGRAM_BOT_TOKEN: fake.token,
          TELEGRAM_API_ROOT: fake.url,
          USER_MAX_ACTIVE: '10',
          COMFYUI_SIM_INSTANCES: '1',
          COMFYUI_SIM_STEP_MS: '40',
          GPU_CONCURRENCY: '1',
          // Few requests in the streams, so jobs wait as held requests of the fair queue and are dispatched later.
          QUEUE_DISPATCH_AHEAD: '1',
        },
        prefix,
      );
      await waitForPolling(fake);
    });

    afterAll(async () => {
      await app?.stop();
      await fake?.stop();
    });

    const submit = async (user: string, workflow = 'echo-invert', inputs: object = { width: 8, height: 8 }) => {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow, inputs },
        headers: { 'x-user-id': user },
      });
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const statusOf = async (id: string) => (await app.http(`/v1/generations/${id}`)).body.status as string;
    const waitFor = (id: string, status: string) =>
      pollUntil(
        () => statusOf(id),
        (s) => s === status,
        { timeoutMs: 60_000, description: `${id} ${status}` },
      );

    it('API jobs queue, run, cancel (queued and running) and return their images', async () => {
      const running = await submit('u1', 'txt2img', { prompt: 'a slow lighthouse', steps: 20 });
      const queued = [await submit('u2'), await submit('u3'), await submit('u2'), await submit('u4')];
      await waitFor(running, 'running');
      const cancelQueued = await app.http(`/v1/generations/${queued[1]}/cancel`, { method: 'POST' });
      expect(cancelQueued.body.status).toBe('cancelled');
      await app.http(`/v1/generations/${running}/cancel`, { method: 'POST' });
      await waitFor(running, 'cancelled');
      for (const id of [queued[0]!, queued[2]!, queued[3]!]) {
        await waitFor(id, 'succeeded');
        const result = await app.http(`/v1/generations/${id}/result`);
        expect(result.status).toBe(200);
        expect(result.headers.get('content-type')).toBe('image/png');
      }
    });

    it('Telegram: a prompt and a photo with an instruction come back as pictures', async () => {
      const alice = fake.user(4242);
      fake.sendText(alice, 'a harbour at night');
      fake.sendPhoto(alice, { bytes: testPng(), caption: 'make it brighter' });
      const photos = await waitForResults(fake, alice.id, 2);
      expect(photos).toHaveLength(2);
    });

    it('the operator CLI reads and rebuilds it', async () => {
      const env = { REDIS_URL: server.url };
      const stats = await cli(prefix, ['stats'], { env });
      expect(stats.code).toBe(0);
      const rebuild = await cli(prefix, ['projections', 'rebuild', '--json'], { env });
      expect(rebuild.code).toBe(0);
      expect(JSON.parse(rebuild.out)).toMatchObject({ differences: [] });
      const ids = (await redis.keys(`${prefix}jobs:view:*`)).map((k) => k.slice(k.lastIndexOf(':') + 1));
      expect(ids.length).toBeGreaterThanOrEqual(7);
      const job = await cli(prefix, ['job', ids[0]!], { env });
      expect(job.code).toBe(0);
    });
  });
});
