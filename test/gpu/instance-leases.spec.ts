import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

describe('instance leases across gpu replicas', () => {
  const apps: TestApp[] = [];
  let sim: ComfyUiSimulator;

  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.stop();
    await sim.stop();
  });

  it('three gpu processes never put more than pipeline depth (2) prompts on one instance', async () => {
    sim = new ComfyUiSimulator({ stepMs: 0, manualSteps: true });
    await sim.start({ port: 0, host: '127.0.0.1' });
    const prefix = uniquePrefix('leases');
    const env = { COMFYUI_URLS: sim.url, GPU_CONCURRENCY: '4', USER_MAX_ACTIVE: '50' };
    const api = await startTestApp({ ...env, ROLE: 'api,projector' }, prefix);
    apps.push(api);
    for (let i = 0; i < 3; i++) apps.push(await startTestApp({ ...env, ROLE: 'gpu', INSTANCE_NAME: `w${i}` }, prefix));

    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await api.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'txt2img', inputs: { prompt: `job ${i}`, width: 64, height: 64, steps: 1 } },
      });
      ids.push(res.body.id);
    }
    let peak = 0;
    const onInstance = () => {
      const stats = sim.stats();
      const held = stats.pending + (stats.running ? 1 : 0);
      peak = Math.max(peak, held);
      return held;
    };
    // Let the pipeline fill, then drain it one step at a time while sampling what the instance holds.
    await pollUntil(onInstance, (held) => held === 2);
    await pollUntil(
      async () => {
        onInstance();
        sim.releaseSteps(1);
        const statuses = await Promise.all(
          ids.map(async (id) => (await api.http(`/v1/generations/${id}`)).body.status),
        );
        return statuses.filter((s) => s === 'succeeded').length;
      },
      (done) => done === ids.length,
      { timeoutMs: 60_000, intervalMs: 30 },
    );
    expect(peak).toBe(2);
    expect(sim.stats().submitted).toBe(ids.length);
    expect(sim.stats().executions).toBe(ids.length);
  });
});
