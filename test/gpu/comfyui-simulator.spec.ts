import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { WebSocket } from 'ws';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { pollUntil } from '../support/poll-until';

/**
 * The simulator against the real ComfyUI 0.3.64 captures (copied from shared/reference/comfyui/captures into
 * fixtures/): each scenario is driven the way the capture was made, and status codes, bodies and WebSocket
 * sequences are compared after replacing what legitimately differs (uuids, timestamps, random sids).
 */

const CAPTURES = join(__dirname, 'fixtures', 'comfyui-captures');
type Any = any;
const capture = (name: string): Any => JSON.parse(readFileSync(join(CAPTURES, `${name}.json`), 'utf8'));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX_SID = /^[0-9a-f]{32}$/;

/** uuids → <id0>, <id1>… in order of appearance; timestamps and generated sids → placeholders. */
function normalize(value: unknown, ids = new Map<string, string>()): unknown {
  if (typeof value === 'string') {
    if (UUID.test(value)) {
      if (!ids.has(value)) ids.set(value, `<id${ids.size}>`);
      return ids.get(value);
    }
    return HEX_SID.test(value) ? '<sid>' : value;
  }
  if (Array.isArray(value)) return value.map((v) => normalize(v, ids));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [normalize(k, ids), k === 'timestamp' ? '<ts>' : normalize(v, ids)]),
    );
  }
  return value;
}

/** Binary frames compared by event type and metadata; the image itself is PNG here, JPEG in the captures. */
function comparable(messages: Any[]): Any[] {
  return messages
    .filter((m) => m.direction === undefined)
    .map((m) => {
      if (!m.binary) return m;
      const meta = m.metadata ? { ...m.metadata, image_type: '<image>' } : undefined;
      return meta ? { binary: m.event_type, metadata: meta } : { binary: m.event_type };
    });
}

function expectSameSequence(actual: Any[], expected: Any[]): void {
  expect(normalize(comparable(actual))).toEqual(normalize(comparable(expected)));
}

class WsProbe {
  readonly messages: Any[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.messages.push(JSON.parse(data.toString('utf8')));
        return;
      }
      const eventType = data.readUInt32BE(0);
      const frame: Any = { binary: true, length: data.length, event_type: eventType };
      if (eventType === 1) {
        frame.image_format = data.readUInt32BE(4);
        frame.image_magic_hex = data.subarray(8, 12).toString('hex');
      } else if (eventType === 4) {
        const len = data.readUInt32BE(4);
        frame.metadata_length = len;
        frame.metadata = JSON.parse(data.subarray(8, 8 + len).toString('utf8'));
        frame.image_magic_hex = data.subarray(8 + len, 12 + len).toString('hex');
      }
      this.messages.push(frame);
    });
  }

  static async open(base: string, query = '', firstMessage?: unknown): Promise<WsProbe> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws${query}`);
    const probe = new WsProbe(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (firstMessage !== undefined) ws.send(JSON.stringify(firstMessage));
    await pollUntil(
      () => probe.messages.length,
      (n) => n > 0,
      { description: 'first ws frame' },
    );
    return probe;
  }

  async waitFor(predicate: (m: Any) => boolean, description: string, count = 1): Promise<void> {
    await pollUntil(
      () => this.messages.filter(predicate).length,
      (n) => n >= count,
      { description, timeoutMs: 15_000 },
    );
  }

  /** Waits for the final `executing {node: null}` of a prompt. */
  async waitDone(promptId: string): Promise<void> {
    await this.waitFor(
      (m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === promptId,
      `end of ${promptId}`,
    );
  }

  reset(): void {
    this.messages.length = 0;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.terminate();
    });
  }
}

let sim: ComfyUiSimulator;
let base: string;
const probes: WsProbe[] = [];

async function probe(query = '', firstMessage?: unknown): Promise<WsProbe> {
  const p = await WsProbe.open(base, query, firstMessage);
  probes.push(p);
  return p;
}

async function http(
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<{ status: number; headers: Headers; text: string; json: Any; bytes: Buffer }> {
  const res = await fetch(`${base}${path}`, {
    method,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    headers: raw !== undefined || body !== undefined ? { 'content-type': 'application/json' } : undefined,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: Any = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, bytes };
}

async function submit(request: Any): Promise<Any> {
  const res = await http('POST', request.path ?? '/prompt', request.body);
  expect(res.status).toBe(200);
  return res.json;
}

beforeEach(async () => {
  sim = new ComfyUiSimulator();
  base = (await sim.start({ port: 0, host: '127.0.0.1' })).url;
});

afterEach(async () => {
  await Promise.all(probes.splice(0).map((p) => p.close()));
  await sim.stop();
});

describe('ComfyUI simulator vs captures: endpoints', () => {
  it('answers the basic GET endpoints like capture 01', async () => {
    const cap = capture('01_get_basic_endpoints');
    for (const [path, exchange] of Object.entries<Any>(cap)) {
      const res = await http('GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: exchange.response.status });
      expect(res.headers.get('content-type')).toBe(exchange.response.headers['Content-Type']);
      if (path === '/system_stats') {
        expect(Object.keys(res.json).sort()).toEqual(Object.keys(exchange.response.body).sort());
        expect(Object.keys(res.json.system).sort()).toEqual(Object.keys(exchange.response.body.system).sort());
        expect(Object.keys(res.json.devices[0]).sort()).toEqual(Object.keys(exchange.response.body.devices[0]).sort());
        expect(res.json.system.comfyui_version).toBe('0.3.64');
      } else {
        expect({ path, body: res.json }).toEqual({ path, body: exchange.response.body });
      }
    }
  });

  it('serves every route under /api too (capture 01 api aliases)', async () => {
    const cap = capture('01_get_api_prefix_aliases');
    for (const [path, exchange] of Object.entries<Any>(cap)) {
      const res = await http('GET', path);
      expect(res.status).toBe(exchange.response.status);
      if (path !== '/api/system_stats')
        expect({ path, body: res.json }).toEqual({ path, body: exchange.response.body });
    }
  });

  it('runs a prompt posted to /api/prompt with a socket on /api/ws (capture 01 post)', async () => {
    const cap = capture('01_post_api_prefix_prompt');
    const ws = await WsProbe.open(base.replace(/\/?$/, '/api'), '?clientId=capapi-ae12cb');
    probes.push(ws);
    const res = await http('POST', '/api/prompt', cap.post.request.body);
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(['node_errors', 'number', 'prompt_id']);
    await ws.waitDone(res.json.prompt_id);
    expectSameSequence(ws.messages, cap.ws_messages);
    const history = await http('GET', `/api/history/${res.json.prompt_id}`);
    expect(unnumbered(normalize(history.json))).toEqual(unnumbered(normalize(cap.history.response.body)));
    const interrupt = await http('POST', '/api/interrupt', {});
    expect([interrupt.status, interrupt.text, interrupt.headers.get('content-type')]).toEqual([200, '', null]);
    const view = await http('GET', '/api/view?filename=cap_api_00001_.png&type=output');
    expect(view.status).toBe(200);
    expect(view.headers.get('content-type')).toBe('image/png');
    expect(view.headers.get('content-disposition')).toBe(cap.view.response.headers['Content-Disposition']);
    expect(view.bytes.subarray(0, 8).toString('hex')).toBe(cap.view.response.body.first8hex);
  });
});

/** Prompt numbers depend on how many prompts the server saw before; compare them separately. */
function unnumbered(value: Any): Any {
  const copy = JSON.parse(JSON.stringify(value));
  if (copy && typeof copy === 'object' && 'number' in copy) copy.number = '<n>';
  for (const entry of Object.values<Any>(copy ?? {})) {
    if (entry && Array.isArray(entry.prompt)) entry.prompt[0] = '<n>';
  }
  return copy;
}

/** Output counters depend on earlier runs in the captured session. */
const renumberFiles = (value: unknown): Any =>
  JSON.parse(
    JSON.stringify(value)
      .replace(/_\d{5}_\.png/g, '_#####_.png')
      .replace(/ComfyUI_temp_[a-z]{5}_/g, 'ComfyUI_temp_xxxxx_'),
  );

describe('ComfyUI simulator vs captures: runs and caching', () => {
  it('reproduces a valid run: response, WS order, history, /view and the pixels (capture 02)', async () => {
    const post = capture('02_post_prompt_valid');
    const ws = await probe('?clientId=capclient-5f86c52b');
    const body = await submit(post.request);
    expect(normalize(body)).toEqual(normalize(post.response.body));
    await ws.waitDone(body.prompt_id);
    expectSameSequence(ws.messages, capture('02_ws_sequence_valid_run').messages);

    const history = await http('GET', `/history/${body.prompt_id}`);
    expect(history.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(normalize(history.json)).toEqual(normalize(capture('02_get_history_prompt_id').response.body));
    const recent = await http('GET', '/history?max_items=2');
    expect(normalize(recent.json)).toEqual(normalize(capture('02_get_history_max_items_2').response.body));

    const view = await http('GET', '/view?filename=cap_basic_00001_.png&subfolder=&type=output');
    const viewCap = capture('02_get_view_output_png').response;
    expect(view.status).toBe(200);
    expect(view.headers.get('content-type')).toBe('image/png');
    expect(view.headers.get('content-disposition')).toBe(viewCap.headers['Content-Disposition']);
    const ours = PNG.sync.read(view.bytes);
    const theirs = PNG.sync.read(readFileSync(join(CAPTURES, '02_view_output.png')));
    expect([ours.width, ours.height]).toEqual([theirs.width, theirs.height]);
    expect(ours.data.equals(theirs.data)).toBe(true);
    // ComfyUI embeds the prompt as a tEXt chunk.
    expect(view.bytes.includes(Buffer.from('tEXtprompt\0{"1": {"class_type": "EmptyImage"'))).toBe(true);
  });

  it('serves a cached re-run and a partially cached one (capture 03)', async () => {
    const post = capture('02_post_prompt_valid');
    const ws = await probe('?clientId=capclient-5f86c52b');
    const first = await submit(post.request);
    await ws.waitDone(first.prompt_id);

    ws.reset();
    const again = await submit(post.request);
    expect(unnumbered(normalize(again))).toEqual(
      unnumbered(normalize(capture('03_post_prompt_resubmit_same').response.body)),
    );
    await ws.waitDone(again.prompt_id);
    expectSameSequence(ws.messages, capture('03_ws_sequence_resubmit_cached').messages);
    const history = await http('GET', `/history/${again.prompt_id}`);
    expect(unnumbered(normalize(history.json))).toEqual(
      unnumbered(normalize(capture('03_get_history_resubmit_cached').response.body)),
    );

    ws.reset();
    const partialCap = capture('03_ws_sequence_partial_cache_changed_output_node');
    const partial = await submit(partialCap.request);
    await ws.waitDone(partial.prompt_id);
    expectSameSequence(ws.messages, partialCap.messages);
    expect(sim.executionCount(first.prompt_id) + sim.executionCount(again.prompt_id)).toBe(2);
  });

  it('honours client prompt ids, re-runs a reused one and overwrites its history (capture 04)', async () => {
    const ws = await probe('?clientId=capclient-5f86c52b');
    for (const name of ['04_client_supplied_prompt_id', '04_client_supplied_prompt_id_reused']) {
      const cap = capture(name);
      ws.reset();
      const body = await submit(cap.post.request);
      expect(unnumbered(body)).toEqual(unnumbered(cap.post.response.body));
      await ws.waitFor(
        (m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === 'client-chosen-id-0001',
        'end of the run',
      );
      expectSameSequence(ws.messages, cap.ws_messages);
      const history = await http('GET', '/history/client-chosen-id-0001');
      expect(unnumbered(normalize(history.json))).toEqual(unnumbered(normalize(cap.history.response.body)));
    }
    expect(sim.executionCount('client-chosen-id-0001')).toBe(2);
    expect(Object.keys((await http('GET', '/history')).json)).toEqual(['client-chosen-id-0001']);
  });

  it('echoes a client number and keeps extra_data in history (capture 04 number/extra_data)', async () => {
    const cap = capture('04_post_prompt_number_and_extra_data');
    const ws = await probe('?clientId=capclient-5f86c52b');
    const body = await submit(cap.post.request);
    expect(normalize(body)).toEqual(normalize(cap.post.response.body));
    await ws.waitDone(body.prompt_id);
    const history = await http('GET', `/history/${body.prompt_id}`);
    expect(normalize(history.json)).toEqual(normalize(cap.history.response.body));
    const png = sim.readFile({ filename: 'cap_extra_00001_.png', subfolder: '', type: 'output' })!;
    expect(png.includes(Buffer.from('tEXtworkflow\0{"note": "x"}'))).toBe(true);
  });
});

describe('ComfyUI simulator vs captures: validation', () => {
  it('answers every validation case with the captured status and body (capture 05)', async () => {
    const cases = capture('05_post_prompt_validation_errors');
    const ws = await probe('?clientId=capval-a202b2');
    let numbered = 0;
    for (const [name, exchange] of Object.entries<Any>(cases)) {
      const { request, response } = exchange;
      const raw: string | undefined = request.raw_body;
      const res =
        raw === undefined ? await http('POST', '/prompt', request.body) : await http('POST', '/prompt', undefined, raw);
      expect({ name, status: res.status }).toEqual({ name, status: response.status });
      expect({ name, type: res.headers.get('content-type') }).toEqual({ name, type: response.headers['Content-Type'] });
      if (typeof response.body === 'string') {
        expect({ name, body: res.text }).toEqual({ name, body: response.body });
      } else if (res.status === 200) {
        expect(res.json.number).toBe(numbered);
        expect({ name, body: unnumbered(normalize(res.json)) }).toEqual({
          name,
          body: unnumbered(normalize(response.body)),
        });
      } else {
        expect({ name, body: res.json }).toEqual({ name, body: response.body });
      }
      let parses = true;
      try {
        JSON.parse(raw ?? JSON.stringify(request.body));
      } catch {
        parses = false;
      }
      if (parses) numbered++;
    }
    // Numbers advance on every JSON post, valid or not; the only run is the accepted one.
    const run = Object.values<Any>(cases).find((c) => c.response.status === 200);
    const accepted = (await http('GET', '/history')).json;
    const [promptId] = Object.keys(accepted);
    expect(Object.keys(accepted)).toHaveLength(1);
    await ws.waitDone(promptId);
    expect(renumberFiles(normalize(comparable(ws.messages)))).toEqual(
      renumberFiles(normalize(comparable(capture('05_ws_messages_during_validation_errors').messages))),
    );
    expect(run).toBeDefined();
    expect(sim.stats().rejected).toBe(Object.values<Any>(cases).filter((c) => c.response.status === 400).length);
  });
});

describe('ComfyUI simulator vs captures: runtime errors and progress', () => {
  it('reports a node failure like capture 06 and keeps the good upstream node cached', async () => {
    const cap = capture('06_runtime_execution_error');
    const ws = await probe('?clientId=caprt-37df35');
    const body = await submit(cap.post.request);
    await ws.waitDone(body.prompt_id);
    expect(normalize(comparable(ws.messages))).toEqual(normalize(comparable(cap.ws_messages)));
    const history = await http('GET', `/history/${body.prompt_id}`);
    expect(unnumbered(normalize(history.json))).toEqual(unnumbered(normalize(cap.history.response.body)));

    ws.reset();
    const again = capture('06_runtime_execution_error_resubmitted');
    const second = await submit(again.post.request);
    await ws.waitDone(second.prompt_id);
    expect(normalize(comparable(ws.messages))).toEqual(normalize(comparable(again.ws_messages)));
  });

  it('streams progress with legacy previews, metadata previews, or none (capture 07)', async () => {
    const legacy = capture('07_progress_and_preview_legacy_client');
    const ws1 = await probe('?clientId=caprt-37df35');
    ws1.reset();
    const first = await submit(legacy.post.request);
    await ws1.waitDone(first.prompt_id);
    expect(renumberFiles(normalize(comparable(ws1.messages)))).toEqual(
      renumberFiles(normalize(comparable(legacy.ws_messages))),
    );
    const frames = ws1.messages.filter((m) => m.binary);
    expect(frames.map((f) => [f.event_type, f.image_format, f.image_magic_hex])).toEqual(
      Array(3).fill([1, 2, '89504e47']),
    );
    expect(normalize(renumberFiles(unnumbered((await http('GET', `/history/${first.prompt_id}`)).json)))).toEqual(
      normalize(renumberFiles(unnumbered(legacy.history.response.body))),
    );

    const meta = capture('07_progress_and_preview_metadata_client');
    const ws2 = await probe('?clientId=capff-ca1924', {
      type: 'feature_flags',
      data: { supports_preview_metadata: true },
    });
    await ws2.waitFor((m) => m.type === 'feature_flags', 'feature flags reply');
    const second = await submit(meta.post.request);
    await ws2.waitDone(second.prompt_id);
    expect(renumberFiles(normalize(comparable(ws2.messages)))).toEqual(
      renumberFiles(normalize(comparable(meta.ws_messages))),
    );
    expect(ws2.messages.filter((m) => m.binary).every((f) => f.metadata.image_type === 'image/png')).toBe(true);

    const none = capture('07_progress_no_preview');
    ws2.reset();
    const third = await submit(none.post.request);
    await ws2.waitDone(third.prompt_id);
    expect(renumberFiles(normalize(comparable(ws2.messages)))).toEqual(
      renumberFiles(normalize(comparable(none.ws_messages))),
    );

    const temp = ws2.messages.find((m) => m.type === 'executed').data.output.images[0];
    expect(temp.filename).toMatch(/^ComfyUI_temp_[a-z]{5}_00003_\.png$/);
    const view = await http('GET', `/view?filename=${temp.filename}&subfolder=&type=temp`);
    expect([view.status, view.headers.get('content-type')]).toEqual([200, 'image/png']);
  });
});

function probePrompt(color: number, steps: number, extra: Any = {}): Any {
  return {
    prompt: {
      '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color } },
      '2': { class_type: 'ProbeProgress', inputs: { image: ['1', 0], steps, delay: 0.5, preview: false } },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'cap_q' } },
    },
    client_id: 'capq-9a5463',
    ...extra,
  };
}

describe('ComfyUI simulator vs captures: queue, interrupt, cancel (capture 08)', () => {
  it('deletes pending items only, interrupts by id or globally, clears, orders front items', async () => {
    const cap = capture('08_queue_interrupt_cancel_ops');
    const exchange = (label: string): Any => cap.exchanges.find((e: Any) => e.label === label);
    sim.configure({ manualSteps: true });
    const observer = await probe('?clientId=capq-observer');
    const owner = await probe('?clientId=capq-9a5463');
    const at =
      (promptId: string, node: string): ((m: Any) => boolean) =>
      (m) =>
        m.type === 'executing' && m.data.node === node && m.data.prompt_id === promptId;
    const progress =
      (promptId: string, value: number): ((m: Any) => boolean) =>
      (m) =>
        m.type === 'progress' && m.data.prompt_id === promptId && m.data.value === value;
    const status =
      (remaining: number): ((m: Any) => boolean) =>
      (m) =>
        m.type === 'status' && m.data.status.exec_info.queue_remaining === remaining;

    const p1 = (await submit({ body: exchange('submit_1').request.body })).prompt_id;
    await owner.waitFor(at(p1, '2'), 'p1 at node 2');
    const p2 = (await submit({ body: exchange('submit_2').request.body })).prompt_id;
    const p3 = (await submit({ body: exchange('submit_3').request.body })).prompt_id;
    await owner.waitFor(status(3), 'three queued');

    const queue = await http('GET', '/queue');
    expect(unnumberedQueue(normalize(queue.json))).toEqual(
      unnumberedQueue(normalize(exchange('queue_after_3_submits').response.body)),
    );
    expect((await http('GET', '/prompt')).json).toEqual(exchange('get_prompt_queue_remaining').response.body);

    sim.releaseSteps(2);
    await owner.waitFor(progress(p1, 2), 'p1 step 2');
    for (const label of ['queue_delete_pending_3', 'queue_delete_unknown', 'queue_delete_running_1_noop']) {
      const body =
        label === 'queue_delete_pending_3'
          ? { delete: [p3] }
          : label === 'queue_delete_unknown'
            ? { delete: ['no-such-id'] }
            : { delete: [p1] };
      const res = await http('POST', '/queue', body);
      expect([res.status, res.text, res.headers.get('content-type')]).toEqual([200, '', null]);
    }
    await owner.waitFor(status(2), 'p3 deleted');
    const afterDelete = (await http('GET', '/queue')).json;
    expect([afterDelete.queue_running.map((i: Any) => i[1]), afterDelete.queue_pending.map((i: Any) => i[1])]).toEqual([
      [p1],
      [p2],
    ]);

    expect((await http('POST', '/interrupt', { prompt_id: 'no-such-id' })).status).toBe(200);
    expect((await http('POST', '/interrupt', { prompt_id: p2 })).status).toBe(200);
    const untouched = (await http('GET', '/queue')).json;
    expect([untouched.queue_running.map((i: Any) => i[1]), untouched.queue_pending.map((i: Any) => i[1])]).toEqual([
      [p1],
      [p2],
    ]);

    for (const e of cap.exchanges.filter(
      (x: Any) => x.label.startsWith('jobs_cancel_route') || x.label.startsWith('get /'),
    )) {
      const path = e.request.path
        .replace('324b23e4-c38a-4026-81a5-c25e3c0e2c4f', p1)
        .replace('507c235e-387d-4c99-bd08-eabec818b129', p2);
      const res = await http(e.request.method, path, e.request.body);
      expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({
        path,
        status: e.response.status,
        type: e.response.headers['Content-Type'],
      });
      if (typeof e.response.body === 'string') expect(res.text).toBe(e.response.body);
    }

    sim.releaseSteps(1);
    await owner.waitFor(progress(p1, 3), 'p1 step 3');
    expect((await http('POST', '/interrupt', { prompt_id: p1 })).status).toBe(200);
    await owner.waitDone(p1);
    await owner.waitFor(at(p2, '2'), 'p2 at node 2');
    sim.releaseSteps(2);
    await owner.waitFor(progress(p2, 2), 'p2 step 2');
    expect((await http('POST', '/interrupt', undefined, '')).status).toBe(200);
    await owner.waitDone(p2);
    expect((await http('POST', '/interrupt', {})).status).toBe(200);

    for (const [id, label] of [
      [p1, 'history_324b23e4-c38a-4026-81a5-c25e3c0e2c4f'],
      [p2, 'history_507c235e-387d-4c99-bd08-eabec818b129'],
      [p3, 'history_81d99c5b-4300-47d0-a9bd-01fb439e616b'],
    ]) {
      const res = await http('GET', `/history/${id}`);
      const expected = exchange(label).response.body;
      for (const entry of Object.values<Any>(expected)) entry.prompt = '<prompt>';
      for (const entry of Object.values<Any>(res.json)) entry.prompt = '<prompt>';
      expect(normalize(res.json)).toEqual(normalize(expected));
    }

    // Clear: pending emptied, the running prompt continues.
    const c1 = (await submit({ body: probePrompt(1004, 6) })).prompt_id;
    await owner.waitFor(at(c1, '2'), 'c1 at node 2');
    await submit({ body: probePrompt(1005, 6) });
    await submit({ body: probePrompt(1006, 6) });
    await owner.waitFor(status(3), 'batch queued', 2);
    sim.releaseSteps(1);
    await owner.waitFor(progress(c1, 1), 'c1 step 1');
    expect((await http('POST', '/queue', { clear: true })).status).toBe(200);
    const cleared = (await http('GET', '/queue')).json;
    expect([cleared.queue_running.map((i: Any) => i[1]), cleared.queue_pending]).toEqual([[c1], []]);
    sim.releaseSteps(5);
    await owner.waitDone(c1);

    const nonJson = await http('POST', '/queue', undefined, 'nonsense');
    expect([nonJson.status, nonJson.text]).toEqual([500, exchange('queue_post_non_json').response.body]);

    // front: true jumps ahead of pending prompts with a negative number.
    const a = (await submit({ body: exchange('submit_a').request.body })).prompt_id;
    await owner.waitFor(at(a, '2'), 'a at node 2');
    const b = await submit({ body: exchange('submit_b').request.body });
    const c = await submit({ body: exchange('submit_c_front_true').request.body });
    expect(c.number).toBeLessThan(0);
    expect(c.number).toBe(-(Number(b.number) + 1));
    const fronted = (await http('GET', '/queue')).json;
    expect(fronted.queue_pending.map((i: Any) => i[1])).toEqual([c.prompt_id, b.prompt_id]);
    sim.releaseSteps(8);
    await owner.waitDone(b.prompt_id);

    const oldest = (await http('GET', '/history?max_items=1&offset=0')).json;
    expect(Object.keys(oldest)).toEqual([p1]);
    expect((await http('POST', '/history', { delete: [p1] })).text).toBe('');
    expect((await http('GET', `/history/${p1}`)).json).toEqual({});
    expect((await http('GET', '/history/no-such-id')).json).toEqual({});

    expect(normalize(comparable(owner.messages))).toEqual(
      normalize(comparable(capture('08_ws_sequence_queue_ops_owner_client').messages)),
    );
    expect(normalize(observer.messages)).toEqual(
      normalize(capture('08_ws_sequence_queue_ops_observer_client').messages),
    );
    expect(sim.executionCount(p3)).toBe(0);
  });

  it('offers the modelled POST /api/jobs/{id}/cancel when configured', async () => {
    sim.configure({ jobsCancelRoute: true, manualSteps: true });
    const ws = await probe('?clientId=capq-9a5463');
    const running = (await submit({ body: probePrompt(1, 5) })).prompt_id;
    const pending = (await submit({ body: probePrompt(2, 5) })).prompt_id;
    await ws.waitFor((m) => m.type === 'executing' && m.data.node === '2', 'running');
    expect((await http('POST', `/api/jobs/${pending}/cancel`, {})).status).toBe(200);
    expect((await http('POST', `/api/jobs/${running}/cancel`, {})).status).toBe(200);
    await ws.waitFor((m) => m.type === 'execution_interrupted', 'interrupted');
    const unknown = await http('POST', '/api/jobs/nope/cancel', {});
    expect([unknown.status, unknown.json.error.type]).toEqual([404, 'job_not_found']);
    expect(sim.executionCount(pending)).toBe(0);
  });
});

function unnumberedQueue(body: Any): Any {
  const strip = (items: Any[]): Any[] => items.map((i) => ['<n>', ...i.slice(1)]);
  return { queue_running: strip(body.queue_running), queue_pending: strip(body.queue_pending) };
}

async function upload(
  name: string,
  bytes: Buffer,
  fields: Record<string, string> = {},
  field = 'image',
): Promise<{ status: number; json: Any; type: string | null; text: string }> {
  const form = new FormData();
  form.append(field, new Blob([bytes]), name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${base}/upload/image`, { method: 'POST', body: form });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, type: res.headers.get('content-type'), text };
}

function pngOf(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png, { filterType: 1 });
}

describe('ComfyUI simulator vs captures: uploads and files', () => {
  it('stores uploads with ComfyUI naming rules and lists them for LoadImage (capture 09)', async () => {
    const cap = capture('09_upload_image');
    const name = 'capup_d3240b.png';
    const results = [
      await upload(name, pngOf(2, 2, [10, 10, 10])),
      await upload(name, pngOf(2, 2, [10, 10, 10])),
      await upload(name, pngOf(2, 2, [20, 20, 20])),
      await upload(name, pngOf(2, 2, [30, 30, 30])),
      await upload(name, pngOf(1, 1, [40, 40, 40]), { overwrite: 'true' }),
      await upload(name, pngOf(512, 512, [255, 255, 255]), { subfolder: 'capsub', type: 'input' }),
      await upload(name, pngOf(2, 2, [50, 50, 50]), { type: 'temp' }),
      await upload('x.png', pngOf(1, 1, [0, 0, 0]), {}, 'notimage'),
      await upload(name, pngOf(1, 1, [0, 0, 0]), { subfolder: '../../x' }),
    ];
    const labels = Object.keys(cap).filter((k) => k !== 'urlencoded_no_file');
    results.forEach((res, i) => {
      const expected = cap[labels[i]].response;
      expect({ label: labels[i], status: res.status }).toEqual({ label: labels[i], status: expected.status });
      if (expected.status === 200) expect(res.json).toEqual(expected.body);
      else expect([res.text, res.type]).toEqual(['', null]);
    });
    const urlencoded = await fetch(`${base}/upload/image`, {
      method: 'POST',
      body: 'overwrite=true',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(urlencoded.status).toBe(cap.urlencoded_no_file.response.status);
    await urlencoded.arrayBuffer();

    const info = await http('GET', '/object_info/LoadImage');
    expect(info.json).toEqual(capture('09_object_info_LoadImage_after_upload').response.body);

    const run = capture('09_loadimage_uploaded_then_save_subfolder');
    const ws = await probe('?clientId=capli-c9be3e');
    const body = await submit(run.post.request);
    await ws.waitDone(body.prompt_id);
    expectSameSequence(ws.messages, run.ws_messages);
    const history = await http('GET', `/history/${body.prompt_id}`);
    expect(unnumbered(normalize(history.json))).toEqual(unnumbered(normalize(run.history.response.body)));
    const saved = PNG.sync.read(sim.readFile({ filename: 'loaded_00001_.png', subfolder: 'cap', type: 'output' })!);
    expect([saved.width, saved.height, saved.data[0]]).toEqual([32, 32, 40]);
  });

  it('answers /view errors and variants like capture 11', async () => {
    await upload('capup_d3240b.png', pngOf(1, 1, [1, 2, 3]));
    await upload('capup_d3240b.png', pngOf(512, 512, [255, 255, 255]), { subfolder: 'capsub' });
    for (const [path, exchange] of Object.entries<Any>(capture('11_view_errors_and_variants'))) {
      const res = await http('GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: exchange.response.status });
      if (res.status !== 200) expect(res.text).toBe('');
      else expect(res.headers.get('content-disposition')).toBe(exchange.response.headers['Content-Disposition']);
    }
  });
});

describe('ComfyUI simulator vs captures: WebSocket routing (captures 10, 12)', () => {
  const run = (clientId?: string): Any => ({
    ...capture('02_post_prompt_valid').request,
    body: {
      prompt: {
        ...capture('02_post_prompt_valid').request.body.prompt,
        '1': {
          class_type: 'EmptyImage',
          inputs: { width: 8, height: 8, batch_size: 1, color: Math.floor(Math.random() * 1e6) },
        },
      },
      ...(clientId ? { client_id: clientId } : {}),
    },
  });

  async function runToEnd(clientId?: string): Promise<string> {
    const { prompt_id: id } = await submit(run(clientId));
    await pollUntil(
      () => http('GET', `/history/${id}`),
      (r) => id in r.json,
      { description: 'run finished' },
    );
    return id;
  }

  it('answers the feature flags handshake', async () => {
    const cap = capture('10_ws_feature_flags_handshake');
    const ws = await probe('?clientId=ffcli-82d089', cap.messages[0].msg);
    await ws.waitFor((m) => m.type === 'feature_flags', 'reply');
    expect(ws.messages).toEqual(comparable(cap.messages));
  });

  it('sends other clients and clientId-less sockets only status broadcasts', async () => {
    const other = await probe('?clientId=othercli-e54e5c3a');
    const anonymous = await probe();
    expect(anonymous.messages[0].data.sid).toMatch(HEX_SID);
    for (let i = 0; i < 6; i++) await runToEnd('somebody-else');
    await other.waitFor(() => true, 'all statuses', 19);
    await anonymous.waitFor(() => true, 'all statuses', 19);
    expect(normalize(other.messages)).toEqual(normalize(capture('10_ws_other_client_during_runs').messages));
    expect(normalize(anonymous.messages)).toEqual(normalize(capture('10_ws_no_client_id_during_runs').messages));
  });

  it('lets a second socket with the same clientId take over the execution messages', async () => {
    const cap = capture('10_ws_same_client_id_two_sockets');
    const first = await probe('?clientId=dupcli');
    const second = await probe('?clientId=dupcli');
    const body = await submit({
      body: {
        prompt: {
          ...capture('02_post_prompt_valid').request.body.prompt,
          '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'cap_dup' } },
        },
        client_id: 'dupcli',
      },
    });
    await second.waitDone(body.prompt_id);
    expect(first.messages).toEqual(cap.first_socket);
    expectSameSequence(second.messages, cap.second_socket);
  });

  it('broadcasts only progress_state for prompts without client_id (capture 12)', async () => {
    const cap = capture('12_prompt_without_client_id_observer_view');
    const seed = await submit({ body: cap.post_success_case.request.body });
    await pollUntil(
      () => http('GET', `/history/${seed.prompt_id}`),
      (r) => seed.prompt_id in r.json,
      {
        description: 'seed run',
      },
    );
    const observer = await probe('?clientId=capnocid-observer');
    const success = await submit({ body: cap.post_success_case.request.body });
    await pollUntil(
      () => http('GET', `/history/${success.prompt_id}`),
      (r) => success.prompt_id in r.json,
      {
        description: 'cached run',
      },
    );
    const failure = await submit({ body: cap.post_error_case.request.body });
    await pollUntil(
      () => http('GET', `/history/${failure.prompt_id}`),
      (r) => failure.prompt_id in r.json,
      {
        description: 'failing run',
      },
    );
    await observer.waitFor(() => true, 'all frames', cap.observer_messages.length);
    expect(normalize(observer.messages)).toEqual(normalize(cap.observer_messages));
    const history = await http('GET', `/history/${success.prompt_id}`);
    expect(unnumbered(normalize(history.json))).toEqual(unnumbered(normalize(cap.history_success_case.response.body)));
  });
});
