import type Redis from 'ioredis';
import { BlobJanitor } from '../../src/blobs/blob-janitor.service';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { TestS3Server } from '../support/s3-server';
import { button, sha256, startBotApp, testPng, waitForPolling, waitForResults } from '../bot/support/bot-harness';

const KEY_PREFIX = 'blobs/';
const objectKey = (hash: string) => `${KEY_PREFIX}${hash.slice(0, 2)}/${hash}`;

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
      expect(await s3.has(objectKey(sha256(bytes)))).toBe(true);

      // The projector released the input when the job ended: the object is gone from the bucket.
      await pollUntil(
        () => s3.has(objectKey(sha256(input))),
        (present) => !present,
        {
          description: 'input object deleted',
        },
      );
      expect(await app.redis.exists(keys.blob(sha256(bytes)))).toBe(0);
      const { total, largest } = await redisBytesUnder(app.redis, app.prefix);
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
      expect(await s3.has(objectKey(resultHash))).toBe(true);
      // Every hold's expiry moved into the past, as BLOB_TTL_SECONDS later would.
      const holds = await app.redis.zrange(keys.blobHolds(resultHash), 0, -1);
      for (const holder of holds) await app.redis.zadd(keys.blobHolds(resultHash), 1, holder);
      await app.redis.zadd(keys.blobDue, 1, resultHash);
      await app.app.get(BlobJanitor).sweep();
      expect(await s3.has(objectKey(resultHash))).toBe(false);
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
        async () => [await s3.has(objectKey(resultHash)), await s3.has(objectKey(sha256(picture)))],
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
