import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

const TXT2IMG = { workflow: 'txt2img', inputs: { prompt: 'a lighthouse', width: 64, height: 64, steps: 4 } };

/**
 * A job that fails for a fault of the fleet (out of memory) is retried by the worker that holds it, at once
 * and at the front of the instance's queue — not left for CLAIM_IDLE_MS while jobs submitted later run.
 */
describe('a retried job keeps its place', () => {
  let sim: ComfyUiSimulator;
  let app: TestApp;

  beforeAll(async () => {
    sim = new ComfyUiSimulator({ stepMs: 20 });
    await sim.start({ port: 0, host: '127.0.0.1' });
    // CLAIM_IDLE_MS far beyond the test's deadline: a retry that waited for the sweeper would fail the test.
    app = await startTestApp({ COMFYUI_URLS: sim.url, CLAIM_IDLE_MS: '60000', USER_MAX_ACTIVE: '50' });
  });

  afterAll(async () => {
    await app?.stop();
    await sim?.stop();
  });

  const submit = async (): Promise<string> => {
    const res = await app.http('/v1/generations', { method: 'POST', json: TXT2IMG });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const events = async () =>
    (await app.redis.xrange(`${app.prefix}jobs:events`, '-', '+')).map(([, f]) => JSON.parse(f[1]!));

  it('runs again before the jobs submitted after it, without waiting for CLAIM_IDLE_MS', async () => {
    sim.inject({ kind: 'execution-error', classType: 'KSampler', oom: true, times: 1 });
    const first = await submit();
    const later = [await submit(), await submit(), await submit()];
    const all = [first, ...later];
    await pollUntil(
      async () => Promise.all(all.map(async (id) => (await app.http(`/v1/generations/${id}`)).body.status)),
      (statuses) => statuses.every((s) => s === 'succeeded'),
      { timeoutMs: 20_000, description: 'every job succeeded' },
    );
    const log = await events();
    const failures = log.filter((e) => e.jobId === first && e.type === 'job.failed');
    expect(failures.map((e) => e.payload)).toEqual([expect.objectContaining({ willRetry: true, attempt: 1 })]);

    // Order of the runs that succeeded (the events stream is in order): the retried job is not passed by the
    // jobs that were not yet on the instance when it failed (the second one was already queued there).
    const starts = log
      .filter((e) => e.type === 'job.started')
      .filter((e) => e.jobId !== first || e.payload.attempt === 2)
      .map((e) => e.jobId as string);
    const at = (id: string) => starts.lastIndexOf(id);
    expect(at(first)).toBeGreaterThanOrEqual(0);
    expect(at(first)).toBeLessThan(at(later[1]!));
    expect(at(first)).toBeLessThan(at(later[2]!));
  });
});
