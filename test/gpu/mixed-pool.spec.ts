import { instanceIdOf } from '../../src/modules/gpu/pool/comfyui-instance';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

/**
 * COMFYUI_URLS names one instance without a checkpoint (its /object_info lists none, as a real server without
 * models answers) and one with it: txt2img jobs all run on the capable one, model-free jobs on both, a job naming a
 * model no instance has is refused at submit.
 */
describe('a mixed pool: routing by capability', () => {
  let bare: ComfyUiSimulator;
  let full: ComfyUiSimulator;
  let app: TestApp;

  beforeAll(async () => {
    bare = new ComfyUiSimulator({ models: { checkpoints: [] }, stepMs: 5 });
    full = new ComfyUiSimulator({ stepMs: 5 });
    await bare.start();
    await full.start();
    app = await startTestApp(
      { ROLE: 'all', COMFYUI_URLS: `${bare.url},${full.url}`, USER_MAX_ACTIVE: '50', TELEGRAM_BOT_TOKEN: '' },
      uniquePrefix('mixed'),
    );
  });

  afterAll(async () => {
    await app.stop();
    await bare.stop();
    await full.stop();
  });

  async function submit(workflow: string, inputs: Record<string, unknown>) {
    return app.http('/v1/generations', { method: 'POST', json: { workflow, inputs } });
  }

  async function allEnd(ids: string[]): Promise<string[]> {
    return pollUntil(
      () => Promise.all(ids.map(async (id) => (await app.http(`/v1/generations/${id}`)).body.status as string)),
      (statuses) => statuses.every((s) => ['succeeded', 'failed', 'cancelled'].includes(s)),
      { timeoutMs: 30_000, intervalMs: 50, description: 'every job ended' },
    );
  }

  it('the instance without models answers /object_info and /prompt as ComfyUI 0.3.64 without models does', async () => {
    const info: any = await (await fetch(`${bare.url}/object_info/CheckpointLoaderSimple`)).json();
    expect(info.CheckpointLoaderSimple.input.required.ckpt_name).toEqual([
      [],
      { tooltip: 'The name of the checkpoint (model) to load.' },
    ]);
    const res = await fetch(`${bare.url}/prompt`, {
      method: 'POST',
      body: JSON.stringify({
        prompt: {
          '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
          '9': { class_type: 'PreviewImage', inputs: { images: ['8', 0] } },
          '8': { class_type: 'VAEDecode', inputs: { samples: ['5', 0], vae: ['4', 2] } },
          '5': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
        },
      }),
    });
    expect(res.status).toBe(400);
    const body: any = await res.json();
    expect(body.node_errors['4'].errors[0].details).toBe("ckpt_name: 'sd_xl_base_1.0.safetensors' not in []");
  });

  it('every txt2img job succeeds on the capable instance; echo-invert jobs use both', async () => {
    const rejectedBefore = bare.stats().rejected;
    const txt = [];
    for (let i = 0; i < 6; i++) {
      txt.push((await submit('txt2img', { prompt: `job ${i}`, width: 64, height: 64, steps: 2 })).body.id as string);
    }
    const echo = [];
    for (let i = 0; i < 8; i++) echo.push((await submit('echo-invert', { width: 8, height: 8, color: i })).body.id);
    const statuses = await allEnd([...txt, ...echo]);
    expect(statuses.every((s) => s === 'succeeded')).toBe(true);
    const txtViews = await Promise.all(txt.map(async (id) => await app.redis.hgetall(`${app.prefix}jobs:view:${id}`)));
    expect(new Set(txtViews.map((v) => v.instance))).toEqual(new Set([instanceIdOf(full.url)]));
    expect(bare.stats().rejected).toBe(rejectedBefore);
    expect(bare.stats().succeeded).toBeGreaterThan(0);
    expect(full.stats().succeeded).toBeGreaterThan(txt.length);
  });

  it('a model no instance has is refused at submit with 422 naming it and the instances checked', async () => {
    const res = await submit('txt2img', { prompt: 'x', checkpoint: 'nowhere.safetensors' });
    expect(res.status).toBe(422);
    expect(res.body.error).toBe('no_capable_instance');
    expect(res.body.message).toContain('model "nowhere.safetensors" (CheckpointLoaderSimple.ckpt_name, node 4)');
    expect(res.body.details.instancesChecked.sort()).toEqual([instanceIdOf(bare.url), instanceIdOf(full.url)].sort());
    expect(await app.redis.zcard(`${app.prefix}queue:tickets`)).toBe(0);
  });

  it("/health shows each instance's capabilities", async () => {
    const res = await app.http('/health');
    const instances = res.body.details.comfyui.instances as { url: string; capabilities: any }[];
    const byUrl = Object.fromEntries(instances.map((i) => [i.url, i.capabilities]));
    expect(byUrl[bare.url].models.ckpt_name).toEqual([]);
    expect(byUrl[full.url].models.ckpt_name).toContain('sd_xl_base_1.0.safetensors');
    expect(byUrl[full.url].nodeClasses).toBeGreaterThan(10);
  });
});

/**
 * The same mixed pool split over two gpu processes, each with only its own instance (COMFYUI_URLS): the process
 * whose instance lacks the checkpoint hands txt2img jobs it reads to the one that has it, instead of failing them.
 */
describe('a mixed pool over two gpu processes: hand-off to a capable peer', () => {
  let bare: ComfyUiSimulator;
  let full: ComfyUiSimulator;
  const apps: TestApp[] = [];
  let api: TestApp;
  let bareGpu: TestApp;

  beforeAll(async () => {
    bare = new ComfyUiSimulator({ models: { checkpoints: [] }, stepMs: 5 });
    full = new ComfyUiSimulator({ stepMs: 10 });
    await bare.start();
    await full.start();
    const prefix = uniquePrefix('handoff');
    // Half a minute before a sweeper would move an idle entry: within this test only the hand-off's wake-up can.
    const common = { USER_MAX_ACTIVE: '50', TELEGRAM_BOT_TOKEN: '', CLAIM_IDLE_MS: '30000' };
    api = await startTestApp({ ...common, ROLE: 'api,projector' }, prefix);
    apps.push(api);
    bareGpu = await startTestApp(
      { ...common, ROLE: 'gpu', COMFYUI_URLS: bare.url, INSTANCE_NAME: 'bare', GPU_CONCURRENCY: '4' },
      prefix,
    );
    apps.push(bareGpu);
    // One job at a time on the capable process: the bare one reads most of the burst and must hand it over.
    apps.push(
      await startTestApp(
        { ...common, ROLE: 'gpu', COMFYUI_URLS: full.url, INSTANCE_NAME: 'full', GPU_CONCURRENCY: '1' },
        prefix,
      ),
    );
    // Both processes have read their instance and advertised their consumer.
    await pollUntil(
      async () => {
        const workers = (await api.redis.hvals(`${prefix}gpu:workers`)).map((w) => JSON.parse(w));
        const caps = (await api.redis.hvals(`${prefix}gpu:capabilities`)).map((c) => JSON.parse(c));
        return workers.filter((w) => w.consumer).length === 2 && caps.filter((c) => c.capabilities).length === 2;
      },
      (ready) => ready,
      { timeoutMs: 15_000, description: 'both gpu processes advertised' },
    );
  });

  afterAll(async () => {
    for (const a of apps.reverse()) await a.stop();
    await bare.stop();
    await full.stop();
  });

  it('every txt2img job succeeds on the capable process; echo-invert jobs use both; none fails', async () => {
    const submit = async (workflow: string, inputs: Record<string, unknown>) =>
      (await api.http('/v1/generations', { method: 'POST', json: { workflow, inputs } })).body.id as string;
    const txt: string[] = [];
    for (let i = 0; i < 8; i++)
      txt.push(await submit('txt2img', { prompt: `job ${i}`, width: 64, height: 64, steps: 3 }));
    const echo: string[] = [];
    for (let i = 0; i < 8; i++) echo.push(await submit('echo-invert', { width: 8, height: 8, color: i }));
    const statuses = await pollUntil(
      () => Promise.all([...txt, ...echo].map(async (id) => (await api.http(`/v1/generations/${id}`)).body.status)),
      (s) => s.every((x: string) => ['succeeded', 'failed', 'cancelled'].includes(x)),
      { timeoutMs: 60_000, intervalMs: 50, description: 'every job ended' },
    );
    expect(statuses.every((s) => s === 'succeeded')).toBe(true);
    const instanceOf = async (id: string) => (await api.redis.hget(`${api.prefix}jobs:view:${id}`, 'instance')) ?? '';
    expect(new Set(await Promise.all(txt.map(instanceOf)))).toEqual(new Set([instanceIdOf(full.url)]));
    expect(bare.stats().rejected).toBe(0);
    expect(bare.stats().succeeded).toBeGreaterThan(0);
    const handedOff = bareGpu.streams.stats().find((s) => s.group === 'gpu')!.handedOff;
    expect(handedOff).toBeGreaterThan(0);
    // Operators see it: the bare process's hand-offs are counted in its /metrics.
    const metrics = await bareGpu.http('/metrics');
    expect(metrics.body).toMatch(
      /comfy_relay_consumer_handed_off_total\{group="gpu",consumer="gpu-bare-1"[^}]*\} [1-9]/,
    );
  });
});
