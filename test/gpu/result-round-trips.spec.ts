import { REDIS } from '../../src/streams/redis.provider';
import { BLOB_ACQUIRE, BLOB_BYTES_WRITE } from '../../src/redis/scripts';
import type { RedisClient } from '../../src/redis/redis-client';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { recordWrites } from '../support/redis-writes';

/**
 * The end of a job on a real ComfyUI executor, in Redis round trips (counted by socket writes, never by time): the
 * instance slot is freed in the round trip that stores the result, and the result (Redis backend) is stored in one.
 */
describe('round trips at the end of a job', () => {
  let sim: ComfyUiSimulator;
  let app: TestApp;

  beforeAll(async () => {
    sim = new ComfyUiSimulator({ stepMs: 1 });
    await sim.start({ port: 0, host: '127.0.0.1' });
    app = await startTestApp({ ROLE: 'api,gpu,projector', COMFYUI_URLS: sim.url });
  });

  afterAll(async () => {
    await app.stop();
    await sim.stop();
  });

  it("frees the instance slot in the result's round trip, and stores the result in one", async () => {
    const recorder = recordWrites(app.app.get<RedisClient>(REDIS));
    let view;
    try {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: { width: 16, height: 16, color: 4242 } },
      });
      expect(res.status).toBe(202);
      view = await pollUntil(
        async () => (await app.http(`/v1/generations/${res.body.id}`)).body,
        (v) => v.status === 'succeeded' || v.status === 'failed',
      );
    } finally {
      recorder.stop();
    }
    expect(view.status).toBe('succeeded');
    const freed = recorder.writes.filter((w) => w.includes('zrem') && w.includes(`${app.prefix}gpu:leases:`));
    expect(freed).toHaveLength(1);
    // Sent together with the result's put (not after waiting for the release's reply)…
    expect(freed[0]).toContain(BLOB_ACQUIRE.sha);
    // …which carries the bytes: no second script writes them.
    expect(recorder.writes.some((w) => w.includes(BLOB_BYTES_WRITE.sha))).toBe(false);
    const hash = (view.result as { sha256: string }[])[0]!.sha256;
    expect(await app.redis.exists(`${app.prefix}blob:${hash}`)).toBe(1);
  });
});
