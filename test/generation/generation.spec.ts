import { ProjectionRebuilder } from '../../src/modules/generation/projection/projection-rebuilder';
import { StreamKeys } from '../../src/streams/stream-keys';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import { startTestApp, type TestApp } from '../support/app-harness';
import { expectEventually, pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

describe('generation commands and projection', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    // Stop in reverse order: the first app of a prefix cleans its keys.
    for (const app of apps.splice(0).reverse()) await app.stop();
  });

  async function app(env: Record<string, string>, prefix?: string): Promise<TestApp> {
    const started = await startTestApp(env, prefix);
    apps.push(started);
    return started;
  }

  const submit = (a: TestApp, user: string, inputs: Record<string, unknown> = {}, workflow = 'echo-invert') =>
    a.http('/v1/generations', { method: 'POST', json: { workflow, inputs }, headers: { 'x-user-id': user } });

  it('per-user active limit: 429 with a clear message; other users unaffected; freed when a job ends', async () => {
    const api = await app({ ROLE: 'api,projector', USER_MAX_ACTIVE: '2' });
    expect((await submit(api, 'alice')).status).toBe(202);
    const second = await submit(api, 'alice');
    expect(second.status).toBe(202);
    const third = await submit(api, 'alice');
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: 'too_many_active_jobs', details: { active: 2, limit: 2 } });
    expect(third.body.message).toMatch(/limit is 2/);
    expect(third.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect((await submit(api, 'bob')).status).toBe(202);
    const cancelled = await api.http(`/v1/generations/${second.body.id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(202);
    await expectEventually(async () => expect((await submit(api, 'alice')).status).toBe(202));
  });

  it('cancel of a queued job: cancelled at once, never run, cancel again → 409', async () => {
    const prefix = uniquePrefix('cancel');
    const api = await app({ ROLE: 'api,projector' }, prefix);
    const job = await submit(api, 'carol');
    const res = await api.http(`/v1/generations/${job.body.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: job.body.id, status: 'cancelled' });
    await pollUntil(
      () => api.http(`/v1/generations/${job.body.id}`),
      (r) => r.body.status === 'cancelled',
    );
    // A gpu worker that starts later sees the entry, skips it, and nothing runs.
    const gpu = await app({ ROLE: 'gpu' }, prefix);
    await expectEventually(async () => {
      const pending = (await gpu.redis.xpending(`${prefix}jobs:requests`, 'gpu')) as unknown[];
      expect(pending[0]).toBe(0);
      const info = (await gpu.redis.xinfo('GROUPS', `${prefix}jobs:requests`)) as unknown[][];
      const group = info.find((g) => g[1] === 'gpu')!;
      expect(group[group.indexOf('lag') + 1]).toBe(0);
    });
    const events = (await api.redis.xrange(`${prefix}jobs:events`, '-', '+')).map(([, f]) => JSON.parse(f[1]!).type);
    expect(events).not.toContain('job.started');
    // The API won the queue race and announced it; the worker that met the entry later did not announce it again.
    expect(events.filter((t) => t === 'job.cancelled')).toHaveLength(1);
    const again = await api.http(`/v1/generations/${job.body.id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
  });

  it('queue position only ever falls while a job waits; the ETA is there once a worker is online', async () => {
    const prefix = uniquePrefix('eta');
    const api = await app({ ROLE: 'api,projector', USER_MAX_ACTIVE: '20' }, prefix);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await submit(api, `user-${i}`)).body.id);
    const last = ids[ids.length - 1]!;
    const first = await api.http(`/v1/generations/${last}`);
    expect(first.body.position).toBe(6);
    await app({ ROLE: 'gpu', GPU_CONCURRENCY: '1' }, prefix);
    const samples: { position?: number; eta?: number | null; status: string }[] = [];
    await pollUntil(
      async () => {
        const r = await api.http(`/v1/generations/${last}`);
        samples.push({ position: r.body.position, eta: r.body.etaSeconds, status: r.body.status });
        return r.body.status;
      },
      (s) => s !== 'queued',
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    const queued = samples.filter((s) => s.status === 'queued');
    expect(queued.length).toBeGreaterThan(1);
    for (let i = 1; i < queued.length; i++) {
      expect(queued[i]!.position!).toBeLessThanOrEqual(queued[i - 1]!.position!);
    }
    // The ETA is an estimate that learns run times as jobs finish, so it may move either way by what was learned
    // (its accuracy is eta-burst.spec's); here: once a worker is online, every queued sample has one.
    const online = queued.slice(queued.findIndex((s) => typeof s.eta === 'number'));
    expect(online.length).toBeGreaterThan(0);
    for (const sample of online) expect(sample.eta).toEqual(expect.any(Number));
    expect(new Set(queued.map((s) => s.position)).size).toBeGreaterThan(1);
  });

  it('the projection equals a replay of the events (succeeded, cancelled, failed jobs)', async () => {
    const prefix = uniquePrefix('rebuild');
    const api = await app({ ROLE: 'api,projector', USER_MAX_ACTIVE: '20' }, prefix);
    const ok = await submit(api, 'dave', { prompt: 'one' });
    const cancelled = await submit(api, 'erin', { prompt: 'two' });
    const failed = await submit(api, 'frank', { prompt: 'three' });
    const other = await submit(api, 'gina', { prompt: 'x' }, 'txt2img'); // the echo executor runs any workflow
    await api.http(`/v1/generations/${cancelled.body.id}/cancel`, { method: 'POST' });
    // A worker elsewhere gave up on this one for good before our gpu role starts.
    const publisher = api.app.get(StreamPublisher);
    await publisher.publish(
      'job.failed',
      { jobId: failed.body.id, actor: 'gpu-elsewhere-1' },
      { code: 'comfyui_validation', message: 'node 4: ckpt_name not in list', retriable: false, willRetry: false },
    );
    await app({ ROLE: 'gpu' }, prefix);
    const expected = {
      [ok.body.id]: 'succeeded',
      [cancelled.body.id]: 'cancelled',
      [failed.body.id]: 'failed',
      [other.body.id]: 'succeeded',
    };
    await pollUntil(
      async () =>
        Promise.all(Object.keys(expected).map(async (id) => (await api.http(`/v1/generations/${id}`)).body.status)),
      (statuses) => statuses.join() === Object.values(expected).join(),
    );
    const rebuilder = new ProjectionRebuilder(api.redis, new StreamKeys(prefix));
    const replayed = await rebuilder.replay();
    expect(replayed.size).toBe(4);
    expect([...replayed.values()].map((v) => v.status).sort()).toEqual([
      'cancelled',
      'failed',
      'succeeded',
      'succeeded',
    ]);
    expect(await rebuilder.diff(replayed)).toEqual([]);
  });
});
