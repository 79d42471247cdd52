import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { encodePng } from '../../src/common/png-encoder';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const TXT2IMG = { workflow: 'txt2img', inputs: { prompt: 'a lighthouse', width: 64, height: 64, steps: 4 } };

describe('gpu role on the ComfyUI simulator', () => {
  const apps: TestApp[] = [];
  const sims: ComfyUiSimulator[] = [];
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    for (const app of apps.splice(0).reverse()) await app.stop();
    await Promise.all(sims.splice(0).map((s) => s.stop()));
  });

  async function simulators(count: number, options: ConstructorParameters<typeof ComfyUiSimulator>[0] = {}) {
    const started: ComfyUiSimulator[] = [];
    for (let i = 0; i < count; i++) {
      const sim = new ComfyUiSimulator({ stepMs: 5, ...options });
      await sim.start({ port: 0, host: '127.0.0.1' });
      sims.push(sim);
      started.push(sim);
    }
    return started;
  }

  async function app(env: Record<string, string>, prefix?: string): Promise<TestApp> {
    const started = await startTestApp({ USER_MAX_ACTIVE: '50', ...env }, prefix);
    apps.push(started);
    return started;
  }

  const submit = async (a: TestApp, body: unknown = TXT2IMG): Promise<string> => {
    const res = await a.http('/v1/generations', { method: 'POST', json: body });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const view = async (a: TestApp, id: string) => (await a.http(`/v1/generations/${id}`)).body;
  const waitStatus = (a: TestApp, id: string, status: string, timeoutMs = 20_000) =>
    pollUntil(
      () => view(a, id),
      (v) => v.status === status,
      { timeoutMs, description: `job ${id} ${status}` },
    );
  const events = async (a: TestApp, id: string) =>
    (await a.redis.xrange(`${a.prefix}jobs:events`, '-', '+'))
      .map(([, f]) => JSON.parse(f[1]!))
      .filter((e) => e.jobId === id);

  it('runs txt2img on an instance: accepted → started → progress → completed with a real PNG; one prompt', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    const id = await submit(a);
    const done = await waitStatus(a, id, 'succeeded');
    const png = Buffer.from(await (await fetch(`${a.url}${done.result[0].url}`)).arrayBuffer());
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    const types = (await events(a, id)).map((e) => e.type);
    expect(types).toEqual(['job.accepted', 'job.started', 'job.completed']);
    const accepted = (await events(a, id))[0];
    expect(sim!.executionCount(accepted.payload.promptId)).toBe(1);
    expect(sim!.stats().submitted).toBe(1);
  });

  it('edit: the image input is uploaded to the instance and the result comes back', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    const image = encodePng(8, 8, new Uint8Array(8 * 8 * 4).fill(200)).toString('base64');
    const id = await submit(a, { workflow: 'edit', inputs: { prompt: 'make it blue', image, steps: 2 } });
    await waitStatus(a, id, 'succeeded');
    expect(sim!.stats().uploads).toBe(1);
  });

  it('leaves nothing in ComfyUI’s input/ or output/: uploads and results go to temp/, which its restart empties', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    const image = encodePng(8, 8, new Uint8Array(8 * 8 * 4).fill(90)).toString('base64');
    const edit = await submit(a, { workflow: 'edit', inputs: { prompt: 'make it red', image, steps: 2 } });
    const txt2img = await submit(a);
    for (const id of [edit, txt2img]) {
      const done = await waitStatus(a, id, 'succeeded');
      const png = Buffer.from(await (await fetch(`${a.url}${done.result[0].url}`)).arrayBuffer());
      expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    }
    expect(sim!.storedFiles('input')).toEqual(['example.png']); // the simulator's own sample
    expect(sim!.storedFiles('output')).toEqual([]);
    const temp = sim!.storedFiles('temp');
    expect(temp.filter((f) => f.startsWith(`comfy-relay-${edit}-`))).toHaveLength(1);
    expect(temp.filter((f) => /^ComfyUI_temp_[a-z]{5}_\d{5}_\.png$/.test(f))).toHaveLength(2);
    await sim!.crash();
    await sim!.recover();
    expect(sim!.storedFiles('temp')).toEqual([]);
  });

  it('an image over MAX_IMAGE_BYTES is refused with 400 naming inputs.image; nothing queued', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url, MAX_IMAGE_BYTES: '2048' });
    const image = encodePng(64, 64, randomBytes(64 * 64 * 4)).toString('base64');
    const res = await a.http('/v1/generations', { method: 'POST', json: { workflow: 'invert', inputs: { image } } });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('inputs.image');
    expect(await a.redis.xlen(`${a.prefix}jobs:requests`)).toBe(0);
  });

  it('a ComfyUI 400 validation error fails the job with a readable reason, not retried', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    sim!.inject({ kind: 'validation-error' } as never);
    const id = await submit(a);
    const failed = await waitStatus(a, id, 'failed');
    expect(failed.error.code).toBe('comfyui_validation');
    expect(failed.error.message).toMatch(/ComfyUI rejected the workflow/);
    const failures = (await events(a, id)).filter((e) => e.type === 'job.failed');
    expect(failures).toHaveLength(1);
    expect(failures[0].payload).toMatchObject({ retriable: false, willRetry: false });
    expect(sim!.stats().executions).toBe(0);
  });

  it('a node error fails the job at once; out-of-memory is retried, then parked in the DLQ with its history', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url, MAX_DELIVERIES: '2', CLAIM_IDLE_MS: '300' });
    sim!.inject({ kind: 'execution-error', classType: 'KSampler', message: 'bad sampler config' });
    const nodeError = await submit(a);
    const failed = await waitStatus(a, nodeError, 'failed');
    expect(failed.error).toMatchObject({ code: 'comfyui_execution_error', retriable: false });
    expect(failed.error.message).toMatch(/bad sampler config/);

    sim!.inject({ kind: 'execution-error', classType: 'KSampler', oom: true, times: 5 });
    const oom = await submit(a);
    const parked = await waitStatus(a, oom, 'failed', 30_000);
    expect(parked.error.code).toBe('comfyui_out_of_memory');
    const attempts = (await events(a, oom)).filter((e) => e.type === 'job.failed').map((e) => e.payload.willRetry);
    expect(attempts).toEqual([true, false]);
    const dlq = await pollUntil(
      () => a.redis.xrange(`${a.prefix}jobs:dlq`, '-', '+'),
      (d) => d.length === 1,
    );
    const fields = Object.fromEntries(
      dlq[0]![1].reduce<string[][]>((acc, v, i, all) => (i % 2 === 0 ? [...acc, [v, all[i + 1]!]] : acc), []),
    );
    expect(fields).toMatchObject({ jobId: oom, group: 'gpu' });
    expect(fields.reason).toMatch(/comfyui_out_of_memory/);
    expect(JSON.parse(fields.history!)).toHaveLength(2);
  });

  it('unknown workflow and wrongly typed inputs in a request entry fail the job, not retried', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    const publisher = a.app.get(StreamPublisher);
    const base = { userId: 'api:x', source: 'api' as const, ticket: 1 };
    await publisher.publish(
      'job.requested',
      { jobId: 'job-unknown-wf', actor: 'test' },
      { ...base, workflow: 'nope', inputs: {} },
    );
    await publisher.publish(
      'job.requested',
      { jobId: 'job-bad-input', actor: 'test' },
      { ...base, workflow: 'echo-invert', inputs: { width: 'wide' } },
    );
    await pollUntil(
      async () =>
        [...(await events(a, 'job-unknown-wf')), ...(await events(a, 'job-bad-input'))].filter(
          (e) => e.type === 'job.failed',
        ),
      (f) => f.length === 2,
    );
    const [unknown] = (await events(a, 'job-unknown-wf')).filter((e) => e.type === 'job.failed');
    const [badInput] = (await events(a, 'job-bad-input')).filter((e) => e.type === 'job.failed');
    expect(unknown.payload).toMatchObject({ code: 'unknown_workflow', willRetry: false });
    expect(badInput.payload).toMatchObject({ code: 'bad_inputs', willRetry: false });
    expect(badInput.payload.message).toMatch(/width/);
    expect(sim!.stats().submitted).toBe(0);
  });

  it('ComfyUI down: the job waits (not failed), /health reports the pool down; it completes when ComfyUI is back', async () => {
    const [sim] = await simulators(1);
    const a = await app({ COMFYUI_URLS: sim!.url });
    await sim!.crash();
    const id = await submit(a);
    // Down first (its socket closed), quarantined once the probe fails: wait for the second, not just a 503.
    const health = await pollUntil(
      () => a.http('/health'),
      (r) => r.status === 503 && r.body?.details?.comfyui?.instances?.[0]?.state === 'quarantined',
      { timeoutMs: 15_000 },
    );
    expect(health.body.details.comfyui.status).toBe('down');
    expect(health.body.details.comfyui.instances[0].state).toBe('quarantined');
    expect((await view(a, id)).status).toBe('queued');
    expect((await events(a, id)).filter((e) => e.type === 'job.failed')).toHaveLength(0);
    await sim!.recover();
    await waitStatus(a, id, 'succeeded', 30_000);
    expect((await a.http('/health')).body.details.comfyui.status).toBe('up');
  });

  it('a hung instance: the watchdog fires, the prompt is cancelled there, and the job completes on another instance', async () => {
    const [hung, healthy] = await simulators(2);
    hung!.inject({ kind: 'hang' });
    const a = await app({
      COMFYUI_URLS: `${hung!.url},${healthy!.url}`,
      NO_PROGRESS_TIMEOUT_MS: '700',
      CLAIM_IDLE_MS: '300',
    });
    const id = await submit(a);
    const done = await waitStatus(a, id, 'succeeded', 30_000);
    const all = await events(a, id);
    const failed = all.find((e) => e.type === 'job.failed');
    expect(failed.payload).toMatchObject({ code: 'no_progress', willRetry: true });
    const completed = all.find((e) => e.type === 'job.completed');
    expect(completed.payload.instance).not.toBe(
      failed ? all.find((e) => e.type === 'job.accepted').payload.instance : '',
    );
    expect(hung!.stats().interrupted).toBeGreaterThanOrEqual(1);
    expect(healthy!.stats().succeeded).toBe(1);
    expect(done.status).toBe('succeeded');
  });

  it('cancel while queued in ComfyUI and while running: both end cancelled; the queued prompt never runs', async () => {
    const [sim] = await simulators(1, { manualSteps: true });
    const a = await app({ COMFYUI_URLS: sim!.url });
    const running = await submit(a);
    await pollUntil(
      () => sim!.stats().running,
      (r) => r !== null,
    );
    const queued = await submit(a);
    await pollUntil(
      () => sim!.stats().pending,
      (n) => n === 1,
    );
    // The prompt reaches ComfyUI's queue before job.accepted is appended (the worker records it once POST /prompt
    // answered): wait for the event, not just the queue.
    const accepted = await pollUntil(
      async () => (await events(a, queued)).find((e) => e.type === 'job.accepted'),
      (e) => e !== undefined,
      { description: 'job.accepted of the queued job' },
    );
    const queuedPrompt = accepted.payload.promptId;

    expect((await a.http(`/v1/generations/${queued}/cancel`, { method: 'POST' })).body.status).toBe('cancelling');
    await waitStatus(a, queued, 'cancelled');
    expect(sim!.stats().pending).toBe(0);

    expect((await a.http(`/v1/generations/${running}/cancel`, { method: 'POST' })).status).toBe(202);
    await waitStatus(a, running, 'cancelled');
    await pollUntil(
      () => sim!.stats().running,
      (r) => r === null,
    );
    expect(sim!.stats().interrupted).toBe(1);
    expect(sim!.executionCount(queuedPrompt)).toBe(0);
  });

  /** A gpu worker in its own process, to be killed with -9. */
  function gpuProcess(prefix: string, sim: ComfyUiSimulator): ChildProcess {
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../src/main.ts')],
      {
        env: {
          ...process.env,
          ROLE: 'gpu',
          REDIS_URL: TEST_REDIS_URL,
          STREAM_PREFIX: prefix,
          PORT: '0',
          COMFYUI_URLS: sim.url,
          CLAIM_IDLE_MS: '800',
          INSTANCE_NAME: 'doomed',
          LOG_LEVEL: 'silent',
        },
        stdio: 'ignore',
      },
    );
    children.push(child);
    return child;
  }

  const kill9 = async (child: ChildProcess): Promise<void> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };

  it('a gpu worker killed with -9 mid-job: another worker finishes it and the prompt ran once', async () => {
    const [sim] = await simulators(1, { manualSteps: true });
    const prefix = uniquePrefix('takeover');
    const api = await app({ ROLE: 'api,projector' }, prefix);
    const child = gpuProcess(prefix, sim!);
    const id = await submit(api);
    await pollUntil(
      () => sim!.stats().running,
      (r) => r !== null,
      { timeoutMs: 60_000 },
    );
    // Kill it only once its job.accepted and job.started are out, so the test counts a re-attach.
    const running = await pollUntil(
      () => view(api, id),
      (v) => v.status === 'running' && typeof v.startedAt === 'string',
    );
    sim!.releaseSteps(1);
    await kill9(child);

    await app({ ROLE: 'gpu', COMFYUI_URLS: sim!.url, CLAIM_IDLE_MS: '800', INSTANCE_NAME: 'survivor' }, prefix);
    // The survivor claims the entry, finds the prompt still running there and re-attaches; let it finish.
    await pollUntil(
      async () => (await events(api, id)).filter((e) => e.type === 'job.accepted').length,
      (n) => n === 2,
      { timeoutMs: 45_000, description: 'the survivor re-attaching (second job.accepted)' },
    );
    sim!.releaseSteps(100);
    const done = await waitStatus(api, id, 'succeeded', 20_000);
    const accepted = (await events(api, id)).filter((e) => e.type === 'job.accepted');
    expect(accepted[1].payload.promptId).toBe(accepted[0].payload.promptId);
    // The survivor announces the re-attached prompt as started again; the job still started when it first ran.
    expect((await events(api, id)).filter((e) => e.type === 'job.started')).toHaveLength(2);
    expect(done.startedAt).toBe(running.startedAt);
    expect(sim!.executionCount(accepted[0].payload.promptId)).toBe(1);
    expect(sim!.stats().submitted).toBe(1);
  });

  it('a job waiting in ComfyUI’s queue when its worker is killed -9 shows as started once ComfyUI runs it; the no-progress watchdog guards it', async () => {
    const [sim] = await simulators(1, { manualSteps: true });
    // Someone else's prompt holds ComfyUI, so the job's prompt waits in its queue.
    const blocker = await fetch(`${sim!.url}/prompt`, {
      method: 'POST',
      body: JSON.stringify({ prompt: blockingPrompt(), client_id: 'another-app' }),
    });
    expect(blocker.status).toBe(200);
    await blocker.arrayBuffer();
    const prefix = uniquePrefix('takeover-queued');
    const api = await app({ ROLE: 'api,projector' }, prefix);
    const child = gpuProcess(prefix, sim!);
    const id = await submit(api);
    await pollUntil(
      async () => (await events(api, id)).filter((e) => e.type === 'job.accepted').length,
      (n) => n === 1,
      { timeoutMs: 60_000, description: 'the doomed worker placing the job' },
    );
    await pollUntil(
      () => sim!.stats().pending,
      (n) => n === 1,
    );
    await kill9(child);

    await app(
      {
        ROLE: 'gpu',
        COMFYUI_URLS: sim!.url,
        CLAIM_IDLE_MS: '800',
        NO_PROGRESS_TIMEOUT_MS: '1500',
        INSTANCE_NAME: 'survivor',
      },
      prefix,
    );
    await pollUntil(
      async () => (await events(api, id)).filter((e) => e.type === 'job.accepted').length,
      (n) => n === 2,
      { timeoutMs: 45_000, description: 'the survivor re-attaching to the queued prompt' },
    );
    expect((await view(api, id)).status).toBe('queued');
    const promptId = (await events(api, id))[0].payload.promptId as string;

    // The blocker ends; the job's prompt starts and then makes no progress: ComfyUI tells only the dead worker.
    sim!.releaseSteps(1);
    await pollUntil(
      () => sim!.stats().running,
      (r) => r === promptId,
    );
    const failed = await pollUntil(
      async () => (await events(api, id)).find((e) => e.type === 'job.failed'),
      (e) => e !== undefined,
      { timeoutMs: 20_000, description: 'the no-progress watchdog cancelling the re-attached prompt' },
    );
    expect(failed.payload).toMatchObject({ code: 'no_progress', willRetry: true });
    const types = (await events(api, id)).map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(['job.accepted', 'job.accepted', 'job.started', 'job.failed']);
    expect((await view(api, id)).startedAt).toEqual(expect.any(String));
    expect(sim!.stats().interrupted).toBe(1);

    // The retry runs a new prompt; the interrupted one never ran twice.
    sim!.releaseSteps(100);
    await waitStatus(api, id, 'succeeded', 30_000);
    expect(sim!.executionCount(promptId)).toBe(1);
  });
});

/** A prompt that runs until its one sampler step is released (manualSteps). */
function blockingPrompt(): Record<string, unknown> {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'in the way', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed: 1,
        steps: 1,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        denoise: 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['6', 0],
        latent_image: ['5', 0],
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'other-app' } },
  };
}
