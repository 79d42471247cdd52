import { randomUUID } from 'node:crypto';
import { PNG } from 'pngjs';
import { WebSocket } from 'ws';
import { ComfyUiClient, type ComfyUiClientOptions } from '../../src/modules/gpu/comfyui/comfyui.client';
import {
  ComfyAbortedError,
  ComfyCancelledError,
  ComfyClientClosedError,
  ComfyExecutionError,
  ComfyHttpError,
  ComfyNotFoundError,
  ComfyResponseTooLargeError,
  ComfyTimeoutError,
  ComfyUnavailableError,
  ComfyValidationError,
  PromptWentMissingError,
} from '../../src/modules/gpu/comfyui/comfyui.errors';
import type { ComfyPrompt, ComfyPromptEvent } from '../../src/modules/gpu/comfyui/comfyui.types';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { expectEventually, pollUntil } from '../support/poll-until';

let sim: ComfyUiSimulator;
let base: string;
const clients: ComfyUiClient[] = [];

beforeEach(async () => {
  sim = new ComfyUiSimulator();
  base = (await sim.start({ port: 0, host: '127.0.0.1' })).url;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await sim.stop();
});

function client(overrides: Partial<ComfyUiClientOptions> = {}): ComfyUiClient {
  const c = new ComfyUiClient({
    baseUrl: base,
    clientId: `worker-${randomUUID()}`,
    requestTimeoutMs: 5_000,
    socket: { reconnectMinMs: 20, reconnectMaxMs: 200 },
    watch: {
      pollIntervalMs: 50,
      safetyPollIntervalMs: 300,
      unreachableTimeoutMs: 500,
      previewMinIntervalMs: 0,
      missingRecheckMs: 50,
    },
    ...overrides,
  });
  clients.push(c);
  return c;
}

function txt2img(seed: number, steps = 4, size = 64): ComfyPrompt {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: size, height: size, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: `a red fox ${seed}`, clip: ['4', 1] } },
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
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'client' } },
  };
}

function invert(image: string): ComfyPrompt {
  return {
    '1': { class_type: 'LoadImage', inputs: { image } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'inverted' } },
  };
}

function pngOf(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png, { filterType: 1 });
}

/** A prompt as a dead worker left it: submitted under a clientId nobody listens to any more. */
async function postForeignPrompt(prompt: ComfyPrompt, promptId: string): Promise<void> {
  const res = await fetch(`${base}/prompt`, {
    method: 'POST',
    body: JSON.stringify({ prompt, prompt_id: promptId, client_id: 'dead-worker' }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** Collects watch events; `until` waits for one matching. */
function recorder(): {
  events: ComfyPromptEvent[];
  onEvent: (e: ComfyPromptEvent) => void;
  until: (p: (e: ComfyPromptEvent) => boolean, what: string) => Promise<void>;
} {
  const events: ComfyPromptEvent[] = [];
  return {
    events,
    onEvent: (e) => events.push(e),
    until: async (p, what) => {
      await pollUntil(
        () => events.some(p),
        (found) => found,
        { description: what, timeoutMs: 15_000 },
      );
    },
  };
}

describe('ComfyUiClient: runs', () => {
  it('submits with its own prompt_id and follows progress, previews and outputs to success', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const promptId = randomUUID();
    const rec = recorder();
    const submitted = await c.submit(txt2img(1), { promptId });
    expect(submitted).toEqual({ promptId, number: 0, nodeErrors: [] });
    const watching = c.watch(promptId, { onEvent: rec.onEvent });
    sim.releaseSteps(4);
    const result = await watching;
    expect(result.completedVia).toBe('socket');
    expect(result.images).toEqual([{ filename: 'client_00001_.png', subfolder: '', type: 'output' }]);
    const types = rec.events.map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(['started', 'cached']);
    const progress = rec.events.flatMap((e) => (e.type === 'progress' ? [`${e.node}:${e.value}/${e.max}`] : []));
    expect(progress).toEqual(['3:1/4', '3:2/4', '3:3/4', '3:4/4']);
    const previews = rec.events.flatMap((e) => (e.type === 'preview' ? [e] : []));
    expect(previews).toHaveLength(4);
    expect(previews[0]).toMatchObject({ promptId, node: '3', imageType: 'image/png' });
    expect(previews[0].image.subarray(0, 4).toString('hex')).toBe('89504e47');
    expect(rec.events.find((e) => e.type === 'executed')).toMatchObject({ node: '9', images: result.images });
    const png = PNG.sync.read(await c.view(result.images[0], { maxBytes: 1_000_000 }));
    expect([png.width, png.height]).toEqual([64, 64]);
    expect(sim.executionCount(promptId)).toBe(1);
  });

  it('needs no request but POST /prompt for a run its open socket carried from start to end, cached re-runs included', async () => {
    // A safety poll that never comes due in this test: any /queue or /history request would be one the watch chose.
    const c = client({ watch: { safetyPollIntervalMs: 60_000 } });
    c.connect();
    await pollUntil(
      () => c.socketConnected,
      (up) => up,
      { description: 'socket up' },
    );
    const first = await c.run(txt2img(50), { promptId: randomUUID() });
    expect(first).toMatchObject({ completedVia: 'socket', cachedNodes: [] });
    expect(first.images).toEqual([{ filename: 'client_00001_.png', subfolder: '', type: 'output' }]);
    // The identical prompt again: every node cached, and ComfyUI 0.3.64 still sends the output node's `executed`.
    const again = await c.run(txt2img(50), { promptId: randomUUID() });
    expect(again.cachedNodes.length).toBeGreaterThan(0);
    expect(again).toMatchObject({ completedVia: 'socket', images: first.images });
    expect(sim.stats().requests).toEqual({ 'POST /prompt': 2 });
  });

  it('reads the history of a cached run from a server that does not send cached outputs again', async () => {
    sim.configure({ resendCachedOutputs: false });
    const c = client({ watch: { safetyPollIntervalMs: 60_000 } });
    const first = await c.run(txt2img(51), { promptId: randomUUID() });
    const again = await c.run(txt2img(51), { promptId: randomUUID() });
    expect(again.cachedNodes.length).toBeGreaterThan(0);
    // Its frames hold no output; its history does.
    expect(again).toMatchObject({ completedVia: 'socket', images: first.images });
    expect(sim.stats().requests['GET /history/{id}']).toBe(1);
  });

  it('reads the history of a run whose socket reconnected before its end', async () => {
    sim.configure({ manualSteps: true });
    const c = client({ watch: { safetyPollIntervalMs: 60_000 } });
    const rec = recorder();
    const promptId = randomUUID();
    const result = c.run(txt2img(52, 2), { promptId, onEvent: rec.onEvent });
    await rec.until((e) => e.type === 'executing' && e.node === '3', 'sampler running');
    const opens = c.socketOpens;
    sim.dropSockets();
    await pollUntil(
      () => c.socketOpens > opens && sim.stats().registeredSockets === 1,
      (up) => up,
      { description: 'socket back' },
    );
    sim.releaseSteps(2);
    expect((await result).images).toHaveLength(1);
    // Frames may have been lost in between: the outcome comes from the history, not from the frames.
    expect(sim.stats().requests['GET /history/{id}']).toBeGreaterThanOrEqual(1);
  });

  it('throttles previews and attributes legacy (type 1) previews to the running prompt', async () => {
    const c = client({ socket: { previewMetadata: false }, watch: { previewMinIntervalMs: 60_000 } });
    const rec = recorder();
    const promptId = randomUUID();
    await c.run(txt2img(2, 6), { promptId, onEvent: rec.onEvent });
    const previews = rec.events.filter((e) => e.type === 'preview');
    expect(previews).toHaveLength(1);
    expect(previews[0]).toMatchObject({ promptId, node: null, imageType: 'image/png' });
  });

  it('types validation errors, with partial node_errors on accepted prompts', async () => {
    const c = client();
    const unknown: ComfyPrompt = { ...invert('example.png'), '2': { class_type: 'NoSuchNode', inputs: {} } };
    const err1 = await c.submit(unknown, { promptId: randomUUID() }).catch((e: unknown) => e);
    expect(err1).toBeInstanceOf(ComfyValidationError);
    expect(err1).toMatchObject({ errorType: 'invalid_prompt', retriable: false, nodeErrors: [] });

    const missing: ComfyPrompt = { ...invert('does_not_exist.png') };
    const err2 = (await c.submit(missing, { promptId: randomUUID() }).catch((e: unknown) => e)) as ComfyValidationError;
    expect(err2.errorType).toBe('prompt_outputs_failed_validation');
    expect(err2.nodeErrors).toEqual([
      expect.objectContaining({
        nodeId: '1',
        classType: 'LoadImage',
        messages: ['Custom validation failed for node: image - Invalid image file: does_not_exist.png'],
        dependentOutputs: ['3'],
      }),
    ]);

    const partial: ComfyPrompt = {
      ...invert('example.png'),
      '4': { class_type: 'SaveImage', inputs: { images: ['99', 0], filename_prefix: 'x' } },
    };
    const ok = await c.submit(partial, { promptId: randomUUID() });
    expect(ok.nodeErrors.map((n) => [n.nodeId, n.classType])).toEqual([['4', 'SaveImage']]);
  });

  it('types runtime failures: node errors are final, out-of-memory is retriable', async () => {
    const c = client();
    const blur: ComfyPrompt = {
      '1': { class_type: 'EmptyImage', inputs: { width: 1, height: 1, batch_size: 1, color: 0 } },
      '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 31, sigma: 1.0 } },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'err' } },
    };
    const err = (await c.run(blur, { promptId: randomUUID() }).catch((e: unknown) => e)) as ComfyExecutionError;
    expect(err).toBeInstanceOf(ComfyExecutionError);
    expect(err).toMatchObject({ nodeId: '2', nodeType: 'ImageBlur', exceptionType: 'RuntimeError', retriable: false });
    expect(err.exceptionMessage).toMatch(/^Argument #4: Padding size should be less than/);

    sim.inject({ kind: 'execution-error', classType: 'KSampler', oom: true });
    const oom = (await c.run(txt2img(3), { promptId: randomUUID() }).catch((e: unknown) => e)) as ComfyExecutionError;
    expect(oom).toMatchObject({ nodeId: '3', isOutOfMemory: true, retriable: true });
  });

  it('uploads inputs (renaming like ComfyUI) and runs LoadImage on them, temp uploads included', async () => {
    const c = client();
    const first = await c.uploadImage(pngOf(6, 4, [10, 20, 30]), 'in.png');
    expect(first).toEqual({ name: 'in.png', subfolder: '', type: 'input' });
    expect(await c.uploadImage(pngOf(6, 4, [10, 20, 30]), 'in.png')).toEqual(first);
    expect((await c.uploadImage(pngOf(6, 4, [1, 1, 1]), 'in.png')).name).toBe('in (1).png');
    const result = await c.run(invert(ComfyUiClient.loadImageName(first)), { promptId: randomUUID() });
    const png = PNG.sync.read(await c.view(result.images[0], { maxBytes: 100_000 }));
    expect([png.width, png.height, ...png.data.subarray(0, 3)]).toEqual([6, 4, 245, 235, 225]);

    const temp = await c.uploadImage(pngOf(3, 3, [0, 0, 0]), 'tmp.png', { type: 'temp', subfolder: 'jobs' });
    expect(ComfyUiClient.loadImageName(temp)).toBe('jobs/tmp.png [temp]');
    const fromTemp = await c.run(invert(ComfyUiClient.loadImageName(temp)), { promptId: randomUUID() });
    const white = PNG.sync.read(await c.view(fromTemp.images[0], { maxBytes: 100_000 }));
    expect([...white.data.subarray(0, 3)]).toEqual([255, 255, 255]);
  });

  it('limits /view by size and types a missing file', async () => {
    const c = client();
    const result = await c.run(txt2img(4), { promptId: randomUUID() });
    await expect(c.view(result.images[0], { maxBytes: 100 })).rejects.toBeInstanceOf(ComfyResponseTooLargeError);
    await expect(c.view({ ...result.images[0], filename: 'nope.png' }, { maxBytes: 100 })).rejects.toBeInstanceOf(
      ComfyNotFoundError,
    );
    expect((await c.view(result.images[0], { maxBytes: 1_000_000 })).length).toBeGreaterThan(100);
    // The pool is still usable after an aborted body.
    expect((await c.systemStats()).comfyuiVersion).toBe('0.3.64');
  });
});

describe('ComfyUiClient: cancel', () => {
  it.each([
    ['without /api/jobs (ComfyUI 0.3.64)', false, 'interrupt+delete'],
    ['with /api/jobs/{id}/cancel', true, 'jobs-api'],
  ] as const)('cancels a queued and a running prompt %s', async (_label, jobsRoute, via) => {
    sim.configure({ manualSteps: true, jobsCancelRoute: jobsRoute });
    const c = client();
    const running = randomUUID();
    const queued = randomUUID();
    const rec = recorder();
    await c.submit(txt2img(5, 10), { promptId: running });
    await c.submit(txt2img(6, 10), { promptId: queued });
    const runningResult = c.watch(running, { onEvent: rec.onEvent }).catch((e: unknown) => e);
    const queuedResult = c.watch(queued).catch((e: unknown) => e);
    await rec.until((e) => e.type === 'executing' && e.node === '3', 'sampler running');

    expect(await c.cancel(queued)).toEqual({ via });
    expect(await queuedResult).toBeInstanceOf(ComfyCancelledError);
    expect(await c.cancel(running)).toEqual({ via });
    const err = await runningResult;
    expect(err).toBeInstanceOf(ComfyCancelledError);
    expect(err).toMatchObject({ retriable: false });
    expect(sim.executionCount(queued)).toBe(0);
    expect(sim.executionCount(running)).toBe(1);
    expect((await c.history(running))?.status?.statusStr).toBe('error');
    expect(await c.queue()).toEqual({ running: [], pending: [] });
  });

  it('reports an interruption by someone else as a retriable ComfyInterruptedError', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const rec = recorder();
    const promptId = randomUUID();
    await c.submit(txt2img(7), { promptId });
    const result = c.watch(promptId, { onEvent: rec.onEvent }).catch((e: unknown) => e);
    await rec.until((e) => e.type === 'executing' && e.node === '3', 'sampler running');
    await c.interrupt();
    expect(await result).toMatchObject({ name: 'ComfyInterruptedError', retriable: true, nodeId: '3' });
  });
});

describe('ComfyUiClient: when things go wrong', () => {
  it('falls back to polling history when the socket drops and cannot come back', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const rec = recorder();
    const promptId = randomUUID();
    await c.submit(txt2img(8, 3), { promptId });
    const result = c.watch(promptId, { onEvent: rec.onEvent });
    await rec.until((e) => e.type === 'executing' && e.node === '3', 'sampler running');
    sim.configure({ acceptWebSockets: false });
    sim.dropSockets();
    await pollUntil(
      () => c.socketConnected,
      (up) => !up,
      { description: 'socket down' },
    );
    sim.releaseSteps(3);
    const done = await result;
    expect(done.completedVia).toBe('history');
    expect(done.images).toHaveLength(1);
    expect(rec.events).toContainEqual({ type: 'transport', promptId, mode: 'polling' });
  });

  it('reconnects its socket after a drop and hears the next run', async () => {
    const c = client();
    c.connect();
    await pollUntil(
      () => c.socketConnected,
      (up) => up,
      { description: 'socket up' },
    );
    sim.dropSockets();
    await pollUntil(
      () => sim.stats().registeredSockets,
      (n) => n === 1,
      { description: 'socket re-registered' },
    );
    const rec = recorder();
    const result = await c.run(txt2img(9), { promptId: randomUUID(), onEvent: rec.onEvent });
    expect(result.completedVia).toBe('socket');
    expect(rec.events.some((e) => e.type === 'progress')).toBe(true);
  });

  it('notices when ComfyUI stops routing to its socket and reconnects', async () => {
    const c = client({ deafCheckMs: 100 });
    c.connect();
    await pollUntil(
      () => c.socketConnected,
      (up) => up,
      { description: 'socket up' },
    );
    // Another socket with our clientId takes over and closes: ComfyUI then forgets the clientId entirely.
    const intruder = new WebSocket(`${base.replace('http', 'ws')}/ws?clientId=${c.clientId}`);
    await new Promise((resolve) => intruder.once('open', resolve));
    await new Promise((resolve) => {
      intruder.once('close', resolve);
      intruder.terminate();
    });
    await pollUntil(
      () => sim.stats().registeredSockets,
      (n) => n === 0,
      { description: 'clientId deregistered' },
    );
    expect(c.socketConnected).toBe(true);
    expect((await c.run(txt2img(30), { promptId: randomUUID() })).images).toHaveLength(1);
    await pollUntil(
      () => sim.stats().registeredSockets,
      (n) => n === 1,
      { description: 'socket registered again' },
    );
    const rec = recorder();
    expect((await c.run(txt2img(31), { promptId: randomUUID(), onEvent: rec.onEvent })).completedVia).toBe('socket');
    expect(rec.events.some((e) => e.type === 'progress')).toBe(true);
  });

  it('re-attaches to a prompt another process submitted, by polling', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const promptId = randomUUID();
    const res = await fetch(`${base}/prompt`, {
      method: 'POST',
      body: JSON.stringify({ prompt: txt2img(10, 2), prompt_id: promptId, client_id: 'dead-worker' }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const rec = recorder();
    const result = c.watch(promptId, { onEvent: rec.onEvent });
    await rec.until((e) => e.type === 'transport' && e.mode === 'polling', 'polling mode');
    sim.releaseSteps(2);
    expect((await result).completedVia).toBe('history');
    // A finished prompt is collected from history at once; nothing runs twice.
    expect((await c.watch(promptId)).images).toHaveLength(1);
    expect(sim.executionCount(promptId)).toBe(1);
  });

  // ComfyUI sends execution_start only to the submitting clientId: a dead worker's prompt starts silently.
  it('reports the start of a re-attached prompt that waited in the queue, from the running list of /queue', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    await c.submit(txt2img(40, 1), { promptId: randomUUID() });
    const promptId = randomUUID();
    await postForeignPrompt(txt2img(41, 2), promptId);
    const rec = recorder();
    const result = c.watch(promptId, { onEvent: rec.onEvent });
    await rec.until((e) => e.type === 'queued', 'queued behind the running prompt');
    expect(rec.events.some((e) => e.type === 'started')).toBe(false);
    sim.releaseSteps(1);
    await rec.until((e) => e.type === 'started', 'started once ComfyUI runs it');
    expect(sim.stats().running).toBe(promptId);
    sim.releaseSteps(2);
    expect((await result).completedVia).toBe('history');
    expect(rec.events.filter((e) => e.type === 'started')).toHaveLength(1);
  });

  it('reports the start of a re-attached prompt that ran and ended between two polls, from its history', async () => {
    const c = client();
    const promptId = randomUUID();
    await postForeignPrompt(txt2img(42, 2), promptId);
    await pollUntil(
      () => sim.stats().succeeded,
      (n) => n === 1,
    );
    const rec = recorder();
    expect((await c.watch(promptId, { onEvent: rec.onEvent })).completedVia).toBe('history');
    expect(rec.events.map((e) => e.type)).toEqual(['started']);
  });

  it('reports prompts in neither queue nor history as PromptWentMissingError', async () => {
    const c = client();
    const err = await c.watch('never-submitted').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptWentMissingError);
    expect(err).toMatchObject({ retriable: true });
  });

  it('fails retriably when the server crashes, and reports the prompt missing after a restart', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const rec = recorder();
    const lost = randomUUID();
    await c.submit(txt2img(11), { promptId: lost });
    const first = c.watch(lost, { onEvent: rec.onEvent }).catch((e: unknown) => e);
    await rec.until((e) => e.type === 'executing', 'running');
    await sim.crash();
    const err = await first;
    expect(err).toBeInstanceOf(ComfyUnavailableError);
    expect(err).toMatchObject({ retriable: true });
    await expect(c.submit(txt2img(12), { promptId: randomUUID() })).rejects.toBeInstanceOf(ComfyUnavailableError);

    await sim.recover();
    const second = await c.watch(lost).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(PromptWentMissingError);
    sim.configure({ manualSteps: false });
    await expectEventually(() => expect(c.socketConnected).toBe(true));
    expect((await c.run(txt2img(13), { promptId: randomUUID() })).completedVia).toBe('socket');
  });

  it('stops watching a hung prompt when the caller aborts, and can then cancel it', async () => {
    sim.inject({ kind: 'hang' });
    const c = client();
    const rec = recorder();
    const promptId = randomUUID();
    const controller = new AbortController();
    await c.submit(txt2img(14), { promptId });
    const result = c.watch(promptId, { onEvent: rec.onEvent, signal: controller.signal }).catch((e: unknown) => e);
    await rec.until((e) => e.type === 'executing', 'hung at the first node');
    controller.abort();
    const err = await result;
    expect(err).toBeInstanceOf(ComfyAbortedError);
    expect(err).toMatchObject({ retriable: false });
    await c.cancel(promptId);
    await expect(c.watch(promptId)).rejects.toBeInstanceOf(ComfyCancelledError);
  });

  it('types timeouts and 5xx answers as retriable', async () => {
    const c = client({ requestTimeoutMs: 200 });
    sim.inject({ kind: 'http', route: '/queue', delayMs: 2_000 });
    const timeout = await c.queue().catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(ComfyTimeoutError);
    expect(timeout).toMatchObject({ retriable: true });
    sim.inject({ kind: 'http', route: '/system_stats', status: 500 });
    const err = await c.systemStats().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComfyHttpError);
    expect(err).toMatchObject({ status: 500, retriable: true });
    expect((await c.queue()).running).toEqual([]);
  });

  it('fails in-flight watches on close() and refuses work afterwards', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const promptId = randomUUID();
    await c.submit(txt2img(15), { promptId });
    const result = c.watch(promptId).catch((e: unknown) => e);
    await c.close();
    await c.close();
    expect(await result).toBeInstanceOf(ComfyClientClosedError);
    await expect(c.watch(promptId)).rejects.toBeInstanceOf(ComfyClientClosedError);
    await expect(c.queue()).rejects.toBeInstanceOf(ComfyClientClosedError);
  });

  it('reports queue positions while pending and cleans history', async () => {
    sim.configure({ manualSteps: true });
    const c = client();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) await c.submit(txt2img(20 + i, 1), { promptId: id });
    const rec = recorder();
    const last = c.watch(ids[2], { onEvent: rec.onEvent });
    await rec.until((e) => e.type === 'queued', 'queued');
    expect(rec.events.find((e) => e.type === 'queued')).toEqual({ type: 'queued', promptId: ids[2], position: 1 });
    const location = await c.locate(ids[1]);
    expect(location).toMatchObject({ state: 'pending', position: 0 });
    sim.releaseSteps(3);
    await last;
    await c.deleteHistory(ids);
    await c.freeMemory({ unloadModels: true });
    expect(await c.history(ids[0])).toBeNull();
  });
});
