import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

/** One class of job: ~3 s of drawing on the simulator (30 steps × 100 ms), long beside the service's own overhead. */
const JOB = { workflow: 'txt2img', inputs: { prompt: 'a lighthouse', width: 64, height: 64, steps: 30 } };

/**
 * Twelve users at once on two instances (pipeline depth 2, so four jobs are taken at once but only two draw):
 * every user's first ETA — the one in the 202 — is within ±30 % of when their picture was actually ready.
 */
describe('ETA under a burst', () => {
  const sims: ComfyUiSimulator[] = [];
  let app: TestApp;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const sim = new ComfyUiSimulator({ stepMs: 100 });
      await sim.start({ port: 0, host: '127.0.0.1' });
      sims.push(sim);
    }
    app = await startTestApp({ COMFYUI_URLS: sims.map((s) => s.url).join(','), USER_MAX_ACTIVE: '5' });
  });

  afterAll(async () => {
    await app?.stop();
    await Promise.all(sims.map((s) => s.stop()));
  });

  const submit = async (user: string) => {
    const sentAt = Date.now();
    const res = await app.http('/v1/generations', { method: 'POST', json: JOB, headers: { 'x-user-id': user } });
    expect(res.status).toBe(202);
    return {
      id: res.body.id as string,
      etaSeconds: res.body.etaSeconds as number,
      position: res.body.position,
      sentAt,
    };
  };
  const waitDone = (ids: string[]) =>
    pollUntil(
      async () => Promise.all(ids.map(async (id) => (await app.http(`/v1/generations/${id}`)).body)),
      (views) => views.every((v) => v.status === 'succeeded'),
      { timeoutMs: 60_000, description: 'every job succeeded' },
    );

  it('every first ETA is within ±30 % of the actual time to the picture', async () => {
    // The fleet's speed is learned from one run of the class (a fresh service starts from a prior).
    const warmup = await submit('warmup');
    await waitDone([warmup.id]);

    const jobs = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(`user-${i}`)));
    const views = await waitDone(jobs.map((j) => j.id));
    const report = jobs.map((job, i) => {
      const actualSeconds = (Date.parse(views[i]!.finishedAt) - job.sentAt) / 1000;
      return {
        position: job.position,
        eta: job.etaSeconds,
        actual: actualSeconds,
        ratio: job.etaSeconds / actualSeconds,
      };
    });
    if (process.env.ETA_REPORT) process.stdout.write(`${JSON.stringify(report)}\n`);
    expect({ report, outside: report.filter((row) => row.ratio < 0.7 || row.ratio > 1.3) }).toMatchObject({
      outside: [],
    });
    // The ETAs grow with the place in line, two at a time: not the same "about 10 s" for the first four.
    const sorted = [...report].sort((a, b) => a.actual - b.actual);
    expect(sorted.at(-1)!.eta).toBeGreaterThan(sorted[0]!.eta * 4);
  }, 90_000);
});
