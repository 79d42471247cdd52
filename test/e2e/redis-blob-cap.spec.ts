import { BLOB_STORE, type BlobStore } from '../../src/blobs/blob-store';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniqueShardedPrefix } from '../support/test-redis';
import { testPng } from '../bot/support/bot-harness';

/** Once the filler is released and swept, a submit is taken again. */
async function expectRoomAfterRelease(app: TestApp, blobs: BlobStore, fillerHash: string): Promise<void> {
  await blobs.release(fillerHash, 'out:filler');
  await blobs.sweepExpired();
  const accepted = await app.http('/v1/generations', {
    method: 'POST',
    json: { workflow: 'echo-invert', inputs: { prompt: 'room again', width: 8, height: 8 } },
  });
  expect(accepted.status).toBe(202);
}

/** The Redis backend's cap: images never take Redis memory past BLOB_REDIS_MAX_BYTES, and nothing is lost. */
describe('Redis blob backend capped by BLOB_REDIS_MAX_BYTES (whole app, real Redis)', () => {
  let app: TestApp;
  let keys: StreamKeys;

  beforeAll(async () => {
    app = await startTestApp({ BLOB_REDIS_MAX_BYTES: '600', MAX_DELIVERIES: '2', USER_MAX_ACTIVE: '10' });
    keys = new StreamKeys(app.prefix);
  });

  afterAll(async () => {
    await app.stop();
  });

  it('an image input that does not fit: 503 naming the store, with Retry-After; nothing queued', async () => {
    const refused = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'invert', inputs: { image: testPng(64, 64).toString('base64') } },
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(refused.body).toMatchObject({ error: 'overloaded', details: { reason: 'blob_store_full' } });
    expect(await app.redis.xlen(keys.requests)).toBe(0);
  });

  it('a result that does not fit: the job fails retriably and is parked in the DLQ, never "succeeded" without it', async () => {
    const created = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { prompt: 'too big to keep', width: 256, height: 256 } },
    });
    expect(created.status).toBe(202);
    const done = await pollUntil(
      () => app.http(`/v1/generations/${created.body.id}`),
      (r) => r.body.status === 'failed',
      { timeoutMs: 20_000, description: 'job failed after its retries' },
    );
    expect(done.body.error).toMatchObject({ retriable: true });
    const events = (await app.redis.xrange(keys.events, '-', '+')).map(([, f]) => JSON.parse(f[1]!));
    const failures = events.filter((e) => e.jobId === created.body.id && e.type === 'job.failed');
    expect(failures[0].payload).toMatchObject({ code: 'blob_store_full', retriable: true, willRetry: true });
    expect(failures[0].payload.message).toMatch(/BLOB_REDIS_MAX_BYTES/);
    expect(events.some((e) => e.jobId === created.body.id && e.type === 'job.completed')).toBe(false);
    await pollUntil(
      () => app.redis.xlen(keys.dlq),
      (n) => n === 1,
      { description: 'request parked in the DLQ' },
    );
    const health = await app.http('/health');
    expect(health.body.details.blobStore).toMatchObject({ backend: 'redis', maxBytes: 600, bytes: 0 });
  });

  it('the store near its cap: any submit (txt2img too) gets 503 up front, and is taken again once space is freed', async () => {
    const blobs = app.app.get<BlobStore>(BLOB_STORE);
    const filler = await blobs.put(Buffer.alloc(560, 7), 'image/png', { holder: 'out:filler', ttlSeconds: 600 });
    const refused = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { prompt: 'no room for my result' } },
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'overloaded', details: { reason: 'blob_store_full' } });
    expect(refused.body.message).toMatch(/BLOB_REDIS_MAX_BYTES/);
    await expectRoomAfterRelease(app, blobs, filler.hash);
  });
});

/** STREAM_SHARDS: each shard takes an even share of the cap, and a put is checked against its own share. */
describe('the cap with shards (STREAM_SHARDS=3, whole app, real Redis)', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp(
      { STREAM_SHARDS: '3', BLOB_REDIS_MAX_BYTES: '1800', USER_MAX_ACTIVE: '10' },
      uniqueShardedPrefix('blobcap'),
    );
  });

  afterAll(async () => {
    await app.stop();
  });

  it('one shard near its share: a submit gets 503 up front, though the store as a whole is a third full', async () => {
    const blobs = app.app.get<BlobStore>(BLOB_STORE);
    const filler = await blobs.put(Buffer.alloc(560, 9), 'image/png', { holder: 'out:filler', ttlSeconds: 600 });
    expect(await blobs.usage()).toMatchObject({ bytes: 560, maxBytes: 1800, fullest: 560 / 600 });
    const refused = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { prompt: 'no room in one shard', width: 8, height: 8 } },
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'overloaded', details: { reason: 'blob_store_full' } });
    expect(refused.body.message).toMatch(/in its fullest shard/);
    await expectRoomAfterRelease(app, blobs, filler.hash);
  });
});
