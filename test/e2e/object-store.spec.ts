import { blobNamespace } from '../../src/blobs/blob-bytes';
import type Redis from 'ioredis';
import { BlobJanitorService } from '../../src/blobs/blob-janitor.service';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { TestS3Server } from '../support/s3-server';
import { BLOB_STORE, type BlobStore } from '../../src/blobs/blob-store';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import {
  botGroupPending,
  button,
  requestedJobs,
  sha256,
  startBotApp,
  testPng,
  waitForPolling,
  waitForResults,
} from '../bot/support/bot-harness';

const KEY_PREFIX = 'blobs/';
/** Where the service puts a blob in the bucket: under the key prefix, the deployment's namespace, the hash. */
const objectKey = (app: TestApp, hash: string) =>
  `${KEY_PREFIX}${blobNamespace(app.prefix)}/${hash.slice(0, 2)}/${hash}`;

/** Bytes of every Redis key under the app's prefix (MEMORY USAGE, the allocator's view). */
async function redisBytesUnder(redis: Redis, prefix: string): Promise<{ total: number; largest: [string, number] }> {
  let total = 0;
  let largest: [string, number] = ['', 0];
  let cursor = '0';
  for (let i = 0; i < 1000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    for (const key of keys) {
      const bytes = Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
      total += bytes;
      if (bytes > largest[1]) largest = [key, bytes];
    }
    cursor = next;
    if (cursor === '0') break;
  }
  return { total, largest };
}

describe('images in an S3-compatible object store (s3rver on 127.0.0.1, whole app)', () => {
  let s3: TestS3Server;

  beforeAll(async () => {
    s3 = await new TestS3Server().start();
  });

  afterAll(async () => {
    await s3.destroy();
  });

  describe('HTTP API', () => {
    let app: TestApp;
    let keys: StreamKeys;

    beforeAll(async () => {
      app = await startTestApp(
        s3.env({ BLOB_S3_KEY_PREFIX: KEY_PREFIX, BLOB_S3_TIMEOUT_MS: '1000', USER_MAX_ACTIVE: '20' }),
      );
      keys = new StreamKeys(app.prefix);
    });

    afterAll(async () => {
      await app.stop();
    });

    const finished = (id: string) =>
      pollUntil(
        () => app.http(`/v1/generations/${id}`),
        (r) => ['succeeded', 'failed', 'cancelled'].includes(r.body.status),
        { timeoutMs: 20_000, description: `job ${id} finished` },
      );

    it('an image job: input and result live in the bucket, Redis holds only references, the input goes at the end', async () => {
      const input = testPng(48, 32, 30);
      const created = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'invert', inputs: { image: input.toString('base64') } },
      });
      expect(created.status).toBe(202);
      const done = await finished(created.body.id);
      expect(done.body.status).toBe('succeeded');
      const [result] = done.body.result;

      const response = await fetch(`${app.url}${result.url}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(sha256(bytes)).toBe(result.sha256);
      expect(bytes.length).toBe(result.size);
      expect(await s3.has(objectKey(app, sha256(bytes)))).toBe(true);

      // The projector released the input when the job ended: the object is gone from the bucket.
      await pollUntil(
        () => s3.has(objectKey(app, sha256(input))),
        (present) => !present,
        {
          description: 'input object deleted',
        },
      );
      expect(await app.redis.exists(keys.blob(sha256(bytes)))).toBe(0);
      const { total, largest } = await redisBytesUnder(app.redis as Redis, app.prefix);
      expect(largest).toEqual([expect.stringMatching(/jobs:(requests|events|progress)$/), expect.any(Number)]);
      expect(total).toBeLessThan(40_000); // streams (their fixed nodes), view, timeline, index: no image bytes
    });

    it('an expired result answers 410 (the sweeper deleted it from the bucket)', async () => {
      const created = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: { prompt: 'expires soon', width: 16, height: 16 } },
      });
      const done = await finished(created.body.id);
      const resultHash = done.body.result[0].sha256 as string;
      expect(await s3.has(objectKey(app, resultHash))).toBe(true);
      // Every hold's expiry moved into the past, as BLOB_TTL_SECONDS later would.
      const holds = await app.redis.zrange(keys.blobHolds(resultHash), 0, -1);
      for (const holder of holds) await app.redis.zadd(keys.blobHolds(resultHash), 1, holder);
      await app.redis.zadd(keys.blobDue, 1, resultHash);
      await app.app.get(BlobJanitorService).sweep();
      expect(await s3.has(objectKey(app, resultHash))).toBe(false);
      const gone = await app.http(done.body.result[0].url);
      expect(gone.status).toBe(410);
      expect(gone.body).toMatchObject({ error: 'expired' });
    });

    it('the object store down: an image submit is 503 with Retry-After; a running job is retried, never "succeeded" without its image', async () => {
      await s3.stop();
      let restarted = false;
      try {
        const refused = await app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'invert', inputs: { image: testPng(8, 8).toString('base64') } },
        });
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(refused.body).toMatchObject({ error: 'overloaded', details: { reason: 'blob_store_unavailable' } });

        const created = await app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: { prompt: 'during the outage', width: 16, height: 16 } },
        });
        expect(created.status).toBe(202);
        const failedOnce = await pollUntil(
          () => app.redis.xrange(keys.events, '-', '+'),
          (entries) =>
            entries.some(([, f]) => {
              const e = JSON.parse(f[1]!);
              return e.jobId === created.body.id && e.type === 'job.failed';
            }),
          { timeoutMs: 20_000, description: 'job.failed while the store is down' },
        );
        const failure = failedOnce
          .map(([, f]) => JSON.parse(f[1]!))
          .find((e) => e.type === 'job.failed' && e.jobId === created.body.id);
        expect(failure.payload).toMatchObject({ code: 'blob_store_unavailable', retriable: true, willRetry: true });
        const during = await app.http(`/v1/generations/${created.body.id}`);
        expect(during.body.status).not.toBe('succeeded');

        await s3.start();
        restarted = true;
        const done = await finished(created.body.id);
        expect(done.body.status).toBe('succeeded');
        const image = await fetch(`${app.url}${done.body.result[0].url}`);
        expect(image.status).toBe(200);
      } finally {
        if (!restarted) await s3.start();
      }
    });
  });

  it('BLOB_S3_PRESIGN=true: the result URL redirects to a presigned URL on the object store', async () => {
    const app = await startTestApp(s3.env({ BLOB_S3_KEY_PREFIX: KEY_PREFIX, BLOB_S3_PRESIGN: 'true' }));
    try {
      const created = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: { prompt: 'presigned', width: 16, height: 16 } },
      });
      const done = await pollUntil(
        () => app.http(`/v1/generations/${created.body.id}`),
        (r) => r.body.status === 'succeeded',
        { timeoutMs: 20_000 },
      );
      const redirect = await fetch(`${app.url}${done.body.result[0].url}`, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      const location = redirect.headers.get('location')!;
      expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/${KEY_PREFIX}`)).toBe(true);
      expect(location).toMatch(/X-Amz-Signature=/);
      const image = await fetch(location);
      expect(image.status).toBe(200);
      expect(image.headers.get('content-type')).toBe('image/png');
    } finally {
      await app.stop();
    }
  });

  it('Telegram: an object store outage at delivery time is waited out; the picture arrives once it is back', async () => {
    const fake = new FakeTelegram();
    await fake.start();
    // No gpu role: the test plays the worker, so the outage can start exactly between the result and its delivery.
    const app = await startBotApp(
      fake,
      s3.env({ BLOB_S3_KEY_PREFIX: KEY_PREFIX, ROLE: 'bot,projector', MAX_DELIVERIES: '2', CLAIM_IDLE_MS: '500' }),
    );
    let restarted = false;
    try {
      await waitForPolling(fake);
      const erin = fake.user(5102);
      fake.sendText(erin, 'a quiet harbour');
      const [job] = await pollUntil(
        () => requestedJobs(app),
        (jobs) => jobs.length === 1,
      );
      const picture = testPng(24, 24, 90);
      const ref = await app.app
        .get<BlobStore>(BLOB_STORE)
        .put(picture, 'image/png', { holder: `out:${job!.jobId}`, ttlSeconds: 600 });
      await s3.stop();
      const meta = { jobId: job!.jobId, correlationId: job!.correlationId, actor: 'test-worker' };
      const publisher = app.app.get(StreamPublisher);
      await publisher.publish('job.completed', meta, {
        outputs: [ref],
        instance: 'test',
        promptId: job!.jobId,
        timings: { queuedMs: 1, runMs: 1 },
      });
      // The delivery is waiting on the store (and says so), not failing: nothing sent, nothing dead-lettered.
      await pollUntil(
        () => botGroupPending(app),
        (pending) => pending > 0,
        { description: 'the delivery in progress' },
      );
      // Longer than MAX_DELIVERIES × CLAIM_IDLE_MS: failing the handler instead would park the picture in the DLQ.
      const outageFrom = Date.now();
      await pollUntil(
        () => Date.now() - outageFrom,
        (ms) => ms > 2_500,
        { intervalMs: 100 },
      );
      expect(fake.photos(erin.id)).toHaveLength(0);
      expect(await app.redis.xlen(`${app.prefix}jobs:dlq`)).toBe(0);
      await s3.start();
      restarted = true;
      const [photo] = await waitForResults(fake, erin.id);
      expect(sha256(photo!.file!.bytes!)).toBe(ref.hash);
      expect(await app.redis.xlen(`${app.prefix}jobs:dlq`)).toBe(0);
    } finally {
      if (!restarted) await s3.start();
      await app.stop();
      await fake.stop();
    }
  });

  it('Telegram: a delivered result and its input leave the bucket; Regenerate still works (the photo comes again from Telegram)', async () => {
    const fake = new FakeTelegram();
    await fake.start();
    const app = await startBotApp(fake, s3.env({ BLOB_S3_KEY_PREFIX: KEY_PREFIX }));
    try {
      await waitForPolling(fake);
      const dana = fake.user(5101);
      const picture = testPng(40, 40, 200);
      fake.sendPhoto(dana, { bytes: picture, caption: 'make it blue', width: 40, height: 40 });
      const [first] = await waitForResults(fake, dana.id);
      const resultHash = sha256(first!.file!.bytes!);
      await pollUntil(
        async () => [await s3.has(objectKey(app, resultHash)), await s3.has(objectKey(app, sha256(picture)))],
        ([result, input]) => !result && !input,
        { description: 'result and input objects deleted after delivery' },
      );
      fake.pressButton(dana, dana.id, first!.messageId, button(first));
      const results = await waitForResults(fake, dana.id, 2);
      expect(results[1]!.caption).toBe('make it blue');
    } finally {
      await app.stop();
      await fake.stop();
    }
  });
});
