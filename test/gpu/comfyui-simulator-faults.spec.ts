import { PNG } from 'pngjs';
import { WebSocket } from 'ws';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { expectEventually, pollUntil } from '../support/poll-until';

/** Failure injection, runtime knobs, workflows and speed of the simulator (fidelity is in comfyui-simulator.spec). */

type Any = any;

let sim: ComfyUiSimulator;
let base: string;
const sockets: WebSocket[] = [];

beforeEach(async () => {
  sim = new ComfyUiSimulator();
  base = (await sim.start({ port: 0, host: '127.0.0.1' })).url;
});

afterEach(async () => {
  await Promise.all(
    sockets.splice(0).map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
  await sim.stop();
});

async function listen(clientId: string): Promise<{ ws: WebSocket; messages: Any[] }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?clientId=${clientId}`);
  sockets.push(ws);
  const messages: Any[] = [];
  ws.on('message', (data: Buffer, binary: boolean) =>
    messages.push(binary ? { binary: data.readUInt32BE(0) } : JSON.parse(String(data))),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await pollUntil(
    () => messages.length,
    (n) => n > 0,
    { description: 'first frame' },
  );
  return { ws, messages };
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Any; text: string }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  let json: Any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function get(path: string): Promise<Any> {
  const res = await fetch(`${base}${path}`);
  return res.json();
}

function invertPrompt(color = 0, size = 8, prefix = 'fault'): Any {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}

function txt2img(seed: number, steps = 4, size = 64): Any {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: size, height: size, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed,
        steps,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        denoise: 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['7', 0],
        latent_image: ['5', 0],
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'txt2img' } },
  };
}

/** A Qwen-Image-Edit style graph (UNET/CLIP/VAE loaders, lightning LoRA, AuraFlow shift, CFGNorm). */
function qwenEdit(image: string, instruction: string): Any {
  return {
    '37': {
      class_type: 'UNETLoader',
      inputs: { unet_name: 'qwen_image_edit_2509_fp8_e4m3fn.safetensors', weight_dtype: 'default' },
    },
    '38': {
      class_type: 'CLIPLoader',
      inputs: { clip_name: 'qwen_2.5_vl_7b_fp8_scaled.safetensors', type: 'qwen_image', device: 'default' },
    },
    '39': { class_type: 'VAELoader', inputs: { vae_name: 'qwen_image_vae.safetensors' } },
    '89': {
      class_type: 'LoraLoaderModelOnly',
      inputs: { model: ['37', 0], lora_name: 'Qwen-Image-Lightning-4steps-V1.0.safetensors', strength_model: 1 },
    },
    '66': { class_type: 'ModelSamplingAuraFlow', inputs: { model: ['89', 0], shift: 3 } },
    '75': { class_type: 'CFGNorm', inputs: { model: ['66', 0], strength: 1 } },
    '78': { class_type: 'LoadImage', inputs: { image } },
    '93': {
      class_type: 'ImageScaleToTotalPixels',
      inputs: { image: ['78', 0], upscale_method: 'lanczos', megapixels: 0.01 },
    },
    '88': { class_type: 'VAEEncode', inputs: { pixels: ['93', 0], vae: ['39', 0] } },
    '76': {
      class_type: 'TextEncodeQwenImageEdit',
      inputs: { clip: ['38', 0], prompt: instruction, vae: ['39', 0], image: ['93', 0] },
    },
    '77': {
      class_type: 'TextEncodeQwenImageEdit',
      inputs: { clip: ['38', 0], prompt: '', vae: ['39', 0], image: ['93', 0] },
    },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed: 7,
        steps: 4,
        cfg: 1,
        sampler_name: 'euler',
        scheduler: 'simple',
        denoise: 1,
        model: ['75', 0],
        positive: ['76', 0],
        negative: ['77', 0],
        latent_image: ['88', 0],
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['39', 0] } },
    '60': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'edit' } },
  };
}

async function finished(promptId: string): Promise<Any> {
  const history = await pollUntil(
    () => get(`/history/${promptId}`),
    (h) => promptId in h,
    { description: `history of ${promptId}`, timeoutMs: 15_000 },
  );
  return history[promptId];
}

function pngOf(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png, { filterType: 1 });
}

async function upload(name: string, bytes: Buffer, type?: 'temp'): Promise<Any> {
  const form = new FormData();
  form.append('image', new Blob([bytes]), name);
  if (type) form.append('type', type);
  const res = await fetch(`${base}/upload/image`, { method: 'POST', body: form });
  return res.json();
}

function outputPixels(entry: Any, node: string): PNG {
  const ref = entry.outputs[node].images[0];
  return PNG.sync.read(sim.readFile(ref)!);
}

describe('ComfyUI simulator: failure injection', () => {
  it('hang: starts the prompt and then makes no progress until interrupted', async () => {
    const { messages } = await listen('hang-client');
    sim.inject({ kind: 'hang' });
    const { prompt_id: id } = (await post('/prompt', { prompt: txt2img(1), client_id: 'hang-client' })).json;
    await pollUntil(
      () => messages.filter((m) => m.type === 'executing' && m.data.node !== null).length,
      (n) => n === 1,
      { description: 'first node started' },
    );
    const queue = await get('/queue');
    expect(queue.queue_running.map((i: Any) => i[1])).toEqual([id]);
    expect(sim.stats().running).toBe(id);
    expect((await post('/interrupt', { prompt_id: id })).status).toBe(200);
    const entry = await finished(id);
    const startedAt = messages.findIndex((m) => m.type === 'executing' && m.data.node !== null);
    const after = messages.slice(startedAt + 1).map((m) => m.type);
    expect(after).toEqual(['execution_interrupted', 'status', 'executing']);
    expect(entry.status).toMatchObject({ status_str: 'error', completed: false });
    // The next prompt runs normally.
    const next = (await post('/prompt', { prompt: txt2img(2), client_id: 'hang-client' })).json.prompt_id;
    expect((await finished(next)).status.status_str).toBe('success');
  });

  it('crash: cuts sockets, refuses connections until recover(), which starts empty', async () => {
    const { ws } = await listen('crash-client');
    const { prompt_id: id } = (await post('/prompt', { prompt: invertPrompt(), client_id: 'crash-client' })).json;
    await finished(id);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    sim.inject({ kind: 'crash' });
    await closed;
    await expectEventually(async () => {
      await expect(fetch(`${base}/queue`)).rejects.toThrow();
    });
    expect(sim.stats().crashed).toBe(true);
    await sim.recover();
    expect(await get('/history')).toEqual({});
    expect(await get('/queue')).toEqual({ queue_running: [], queue_pending: [] });
    const again = (await post('/prompt', { prompt: invertPrompt(1), client_id: 'x' })).json;
    expect(again.number).toBe(0);
    expect(sim.executionCount(id)).toBe(1);
    expect((await finished(again.prompt_id)).status.status_str).toBe('success');
  });

  // ComfyUI's main.py calls cleanup_temp() at start: temp/ is wiped, input/ and output/ are kept.
  it('a restart empties temp/ (temp uploads, PreviewImage results) and keeps input/ and output/', async () => {
    expect((await upload('job-input.png', pngOf(4, 4, [9, 9, 9]), 'temp')).type).toBe('temp');
    const preview = invertPrompt(2);
    preview['3'] = { class_type: 'PreviewImage', inputs: { images: ['2', 0] } };
    const previewed = await finished((await post('/prompt', { prompt: preview })).json.prompt_id);
    expect(previewed.outputs['3'].images[0]).toMatchObject({ subfolder: '', type: 'temp' });
    await finished((await post('/prompt', { prompt: invertPrompt(3, 8, 'kept') })).json.prompt_id);
    expect(sim.storedFiles('temp')).toEqual([previewed.outputs['3'].images[0].filename, 'job-input.png']);
    await sim.crash();
    await sim.recover();
    expect(sim.storedFiles('temp')).toEqual([]);
    expect(sim.storedFiles('input')).toEqual(['example.png']);
    expect(sim.storedFiles('output')).toEqual(['kept_00001_.png']);
  });

  it('crash while running: the prompt never finishes and is gone after recovery', async () => {
    sim.inject({ kind: 'crash', at: 'running' });
    const { ws, messages } = await listen('crash-run');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const { prompt_id: id } = (await post('/prompt', { prompt: txt2img(3), client_id: 'crash-run' })).json;
    await closed;
    expect(messages.some((m) => m.type === 'execution_start')).toBe(true);
    expect(messages.some((m) => m.type === 'execution_success')).toBe(false);
    await sim.recover();
    expect(await get(`/history/${id}`)).toEqual({});
    expect(sim.executionCount(id)).toBe(1);
  });

  it('http: answers 500s, delays or drops the connection on chosen routes, a chosen number of times', async () => {
    sim.inject({ kind: 'http', route: '/history', status: 500, times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${base}/api/history`);
      expect([res.status, await res.text()]).toEqual([
        500,
        '500 Internal Server Error\n\nServer got itself in trouble',
      ]);
    }
    expect((await fetch(`${base}/history`)).status).toBe(200);

    sim.inject({ kind: 'http', route: '/queue', dropConnection: true });
    await expect(fetch(`${base}/queue`)).rejects.toThrow();
    expect((await fetch(`${base}/queue`)).status).toBe(200);

    sim.inject({ kind: 'http', route: '/system_stats', method: 'GET', delayMs: 300 });
    const started = Date.now();
    expect((await fetch(`${base}/system_stats`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('validation-error: the next submit is rejected with a 400 validation body', async () => {
    sim.inject({ kind: 'validation-error', nodeId: '2', message: 'simulated' });
    const bad = await post('/prompt', { prompt: invertPrompt() });
    expect(bad.status).toBe(400);
    expect(bad.json.error.type).toBe('prompt_outputs_failed_validation');
    expect(bad.json.node_errors['2']).toMatchObject({ class_type: 'ImageInvert', dependent_outputs: ['3'] });
    expect((await post('/prompt', { prompt: invertPrompt() })).status).toBe(200);
  });

  it('execution-error: a chosen node raises (an OOM here) with the runtime error shape', async () => {
    const { messages } = await listen('oom-client');
    sim.inject({ kind: 'execution-error', classType: 'KSampler', oom: true });
    const { prompt_id: id } = (await post('/prompt', { prompt: txt2img(4), client_id: 'oom-client' })).json;
    const entry = await finished(id);
    const error = messages.find((m) => m.type === 'execution_error').data;
    expect(Object.keys(error)).toEqual([
      'prompt_id',
      'node_id',
      'node_type',
      'executed',
      'exception_message',
      'exception_type',
      'traceback',
      'current_inputs',
      'current_outputs',
      'timestamp',
    ]);
    expect(error).toMatchObject({ node_id: '3', node_type: 'KSampler', exception_type: 'torch.OutOfMemoryError' });
    expect(error.exception_message).toMatch(/out of memory[\s\S]*This error means you ran out of memory on your GPU/);
    expect(error.executed).toEqual(expect.arrayContaining(['4', '5', '6', '7']));
    expect(entry.status.messages.map((m: Any) => m[0])).toEqual([
      'execution_start',
      'execution_cached',
      'execution_error',
    ]);
  });

  it('slows /view down and can refuse WebSocket upgrades', async () => {
    const { prompt_id: id } = (await post('/prompt', { prompt: invertPrompt(5) })).json;
    const ref = (await finished(id)).outputs['3'].images[0];
    sim.configure({ viewDelayMs: 300 });
    const started = Date.now();
    const res = await fetch(`${base}/view?filename=${ref.filename}&type=output`);
    await res.arrayBuffer();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);

    sim.configure({ acceptWebSockets: false });
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?clientId=nope`);
    sockets.push(ws);
    await expect(
      new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      }),
    ).rejects.toThrow(/503/);
  });

  it('dropSockets() cuts connections; clients can reconnect', async () => {
    const { ws } = await listen('drop-client');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    sim.dropSockets();
    await closed;
    const again = await listen('drop-client');
    expect(again.messages[0].data.sid).toBe('drop-client');
    expect(sim.stats().registeredSockets).toBe(1);
  });
});

describe('ComfyUI simulator: workflows and speed', () => {
  it('computes ImageInvert on float32 pixels like torch (truncating conversion included)', async () => {
    const { prompt_id: id } = (await post('/prompt', { prompt: invertPrompt(0x80c8fe, 4) })).json;
    const png = outputPixels(await finished(id), '3');
    expect([...png.data.subarray(0, 3)]).toEqual([126, 54, 0]);
  });

  it('runs txt2img with per-step progress and previews', async () => {
    sim.configure({ samplerSteps: 3 });
    const { messages } = await listen('t2i');
    const { prompt_id: id } = (await post('/prompt', { prompt: txt2img(5, 20, 96), client_id: 't2i' })).json;
    const entry = await finished(id);
    const progress = messages.filter((m) => m.type === 'progress').map((m) => `${m.data.value}/${m.data.max}`);
    expect(progress).toEqual(['1/3', '2/3', '3/3']);
    expect(messages.filter((m) => m.binary === 1)).toHaveLength(3);
    const png = outputPixels(entry, '9');
    expect([png.width, png.height]).toEqual([96, 96]);
  });

  it('runs a Qwen-Image-Edit style graph whose output depends on the uploaded image', async () => {
    const red = await upload('red.png', pngOf(40, 20, [250, 0, 0]));
    const blue = await upload('blue.png', pngOf(40, 20, [0, 0, 250]));
    const a = (await post('/prompt', { prompt: qwenEdit(red.name, 'make it night') })).json;
    const b = (await post('/prompt', { prompt: qwenEdit(blue.name, 'make it night') })).json;
    expect([a.node_errors, b.node_errors]).toEqual([{}, {}]);
    const outA = outputPixels(await finished(a.prompt_id), '60');
    const outB = outputPixels(await finished(b.prompt_id), '60');
    // 0.01 MP keeps the 2:1 aspect (144x72), cropped to multiples of 8 by VAEEncode.
    expect([outA.width, outA.height]).toEqual([144, 72]);
    expect(outA.data[0]).toBeGreaterThan(outA.data[2]);
    expect(outB.data[2]).toBeGreaterThan(outB.data[0]);
  });

  it('executes hundreds of small prompts quickly with 0 ms steps, each exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      ids.push((await post('/prompt', { prompt: invertPrompt(i, 8, `bulk${i}`) })).json.prompt_id);
    }
    await pollUntil(
      () => sim.stats(),
      (s) => s.succeeded === 200,
      { description: '200 runs', timeoutMs: 30_000 },
    );
    expect(ids.every((id) => sim.executionCount(id) === 1)).toBe(true);
    expect(sim.stats().executions).toBe(200);
  });
});
