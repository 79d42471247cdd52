import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

/**
 * The fair queue (docs/fair-queue.md): accounts (an API key, else a user) take turns, the priority tier weighs ×4,
 * and a job's queue position is its true place in the order jobs start. Start order is read from the request
 * stream a single worker (GPU_CONCURRENCY=1) takes jobs from, in order, and from the order of `job.accepted`.
 */
describe('fair queue (real Redis, real HTTP, simulated ComfyUI)', () => {
  const apps: TestApp[] = [];

  afterEach(async () => {
    for (const a of apps.splice(0).reverse()) await a.stop();
  });

  async function app(env: Record<string, string>, prefix?: string): Promise<TestApp> {
    const started = await startTestApp({ USER_MAX_ACTIVE: '100', COMFYUI_SIM_INSTANCES: '1', ...env }, prefix);
    apps.push(started);
    return started;
  }

  const submit = async (a: TestApp, user: string, headers: Record<string, string> = {}, extra = {}) => {
    const res = await a.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 }, ...extra },
      headers: { 'x-user-id': user, ...headers },
    });
    expect(res.status).toBe(202);
    return res.body as { id: string; position: number };
  };

  /** Job ids in the order a single worker was given them (accepted events, in stream order). */
  async function acceptedOrder(a: TestApp, keys: StreamKeys): Promise<string[]> {
    const entries = await a.redis.xrange(keys.events, '-', '+');
    return entries
      .map(([, fields]) => JSON.parse(fields[fields.indexOf('e') + 1]!) as { type: string; jobId: string })
      .filter((e) => e.type === 'job.accepted')
      .map((e) => e.jobId);
  }

  async function runAll(a: TestApp, keys: StreamKeys, count: number, prefix: string): Promise<string[]> {
    await app({ ROLE: 'gpu', GPU_CONCURRENCY: '1' }, prefix);
    return pollUntil(
      () => acceptedOrder(a, keys),
      (order) => order.length === count,
      { timeoutMs: 60_000, intervalMs: 50, description: `${count} jobs started` },
    );
  }

  it('backlogs of 1, 2, 5, 10, 20 jobs start in weighted rotation, and every position was the true start order', async () => {
    const prefix = uniquePrefix('fair');
    const keys = new StreamKeys(prefix);
    const api = await app({ ROLE: 'api,projector' }, prefix);
    const backlogs: [string, number][] = [
      ['u1', 1],
      ['u2', 2],
      ['u3', 5],
      ['u4', 10],
      ['u5', 20],
    ];
    const jobsOf = new Map<string, string[]>();
    for (const [user, n] of backlogs) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await submit(api, user)).id);
      jobsOf.set(user, ids);
    }
    // The model: rounds in which every user with jobs left runs one, users in the order they joined.
    const model: string[] = [];
    for (let round = 0; round < 20; round++) {
      for (const [user] of backlogs) {
        const id = jobsOf.get(user)![round];
        if (id) model.push(id);
      }
    }
    // Every job's position now is its place in that order.
    const positions = await Promise.all(model.map(async (id) => (await api.http(`/v1/generations/${id}`)).body));
    expect(positions.map((p: { position: number }) => p.position)).toEqual(model.map((_, i) => i + 1));
    const started = await runAll(api, keys, model.length, prefix);
    expect(started).toEqual(model);
  });

  it("submitted round by round, every 202 position is the job's start order", async () => {
    const prefix = uniquePrefix('fair');
    const keys = new StreamKeys(prefix);
    const api = await app({ ROLE: 'api,projector' }, prefix);
    const backlogs = new Map([
      ['u1', 1],
      ['u2', 2],
      ['u3', 3],
      ['u4', 5],
    ]);
    const answered: { id: string; position: number }[] = [];
    for (let round = 0; round < 5; round++) {
      for (const [user, n] of backlogs) if (round < n) answered.push(await submit(api, user));
    }
    expect(answered.map((a) => a.position)).toEqual(answered.map((_, i) => i + 1));
    expect(await runAll(api, keys, answered.length, prefix)).toEqual(answered.map((a) => a.id));
  });

  it('a user joining behind a 20-job backlog is third at most, and starts before its third-from-last job', async () => {
    const prefix = uniquePrefix('fair');
    const keys = new StreamKeys(prefix);
    const api = await app({ ROLE: 'api,projector,gpu', GPU_CONCURRENCY: '1', COMFYUI_SIM_STEP_MS: '5' }, prefix);
    const a: string[] = [];
    for (let i = 0; i < 20; i++) a.push((await submit(api, 'user-a')).id);
    const b = await submit(api, 'user-b');
    expect(b.position).toBeLessThanOrEqual(3);
    const started = await pollUntil(
      () => acceptedOrder(api, keys),
      (order) => order.length === 21,
      { timeoutMs: 60_000, intervalMs: 50, description: 'all 21 started' },
    );
    expect(started.indexOf(b.id)).toBeLessThan(started.indexOf(a[a.length - 3]!));
    // A's jobs kept their submit order.
    expect(started.filter((id) => id !== b.id)).toEqual(a);
  });

  it('the priority tier weighs ×4 and never starves the normal tier (200 jobs, two API keys)', async () => {
    const prefix = uniquePrefix('fair');
    const keys = new StreamKeys(prefix);
    const PRIO = 'priority-key-0123456789';
    const NORMAL = 'normal-key-0123456789ab';
    const auth = (key: string) => ({ authorization: `Bearer ${key}` });
    const api = await app(
      { ROLE: 'api,projector', API_KEYS: `${PRIO},${NORMAL}`, API_PRIORITY_KEYS: PRIO, USER_MAX_ACTIVE: '200' },
      prefix,
    );
    const kind = new Map<string, 'p' | 'n'>();
    for (let i = 0; i < 100; i++) {
      kind.set((await submit(api, `n${i % 7}`, auth(NORMAL))).id, 'n');
      kind.set((await submit(api, `p${i % 3}`, auth(PRIO), { priority: true })).id, 'p');
    }
    const started = (await runAll(api, keys, 200, prefix)).map((id) => kind.get(id));
    // After the first few (dispatched before the queue filled), every window of 5 starts holds 4 priority jobs
    // and 1 normal one while both tiers have work; the normal tier keeps moving throughout.
    const steady = started.slice(5, 105);
    for (let i = 0; i + 5 <= steady.length; i += 5) {
      const window = steady.slice(i, i + 5);
      expect(window.filter((k) => k === 'n')).toHaveLength(1);
    }
    expect(started.slice(0, 125).filter((k) => k === 'n').length).toBeGreaterThanOrEqual(24);
  });

  it('a job cancelled before its turn gives its account the turn back', async () => {
    const prefix = uniquePrefix('fair');
    const keys = new StreamKeys(prefix);
    const api = await app({ ROLE: 'api,projector' }, prefix);
    // Two jobs fill the streams (QUEUE_DISPATCH_AHEAD=2); u2 queues three, u1 two and cancels its last.
    await submit(api, 'filler-1');
    await submit(api, 'filler-2');
    for (let i = 0; i < 3; i++) await submit(api, 'u2');
    await submit(api, 'u1');
    const cancelled = await submit(api, 'u1');
    const cancel = await api.http(`/v1/generations/${cancelled.id}/cancel`, { method: 'POST' });
    expect(cancel.body.status).toBe('cancelled');
    // u1's next job takes the cancelled one's turn (second round: after u2's second job), not the round after.
    const next = await submit(api, 'u1');
    expect(next.position).toBe(6);
    // The cancelled job's request is still in the log (a worker meeting it finds it cancelled).
    const requests = await api.redis.xrange(keys.requests, '-', '+');
    expect(requests.some(([, f]) => f.join(' ').includes(cancelled.id))).toBe(true);
  });
});
