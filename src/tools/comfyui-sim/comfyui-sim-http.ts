import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { freemem, totalmem } from 'node:os';
import { posix } from 'node:path';
import type { Logger } from '../../common/logger';
import type { SimExecutor } from './comfyui-sim-executor';
import type { SimFaultBook } from './comfyui-sim-faults';
import { annotatedFilepath, safeRelative, type SimFileStore } from './comfyui-sim-file-store';
import { parseForm } from './comfyui-sim-multipart';
import { PyException, pyFloat, pyInt, pyStr, pyTruthy, pyTypeName } from './comfyui-sim-python.util';
import type { SimPromptQueue } from './comfyui-sim-queue';
import { MAX_UPLOAD_SIZE, SERVER_FEATURES, type SimSocketHub } from './comfyui-sim-socket-hub';
import { pyIn, validatePrompt } from './comfyui-sim-validator';
import type { DirType, JsonObject, SimPrompt, SimQueueItem, SimRuntimeConfig } from './comfyui-sim.types';
import { NODE_DEFS, nodeInfo } from './nodes/node-registry';
import type { NodeEnv } from './nodes/sim-node.types';

const JSON_TYPE = 'application/json; charset=utf-8';
const TROUBLE = '500 Internal Server Error\n\nServer got itself in trouble';
const SENSITIVE_EXTRA_DATA_KEYS = ['auth_token_comfy_org', 'api_key_comfy_org'];
const MIME_BY_EXT: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
};

/** The server state the routes work on; queue and executor are replaced when a crash is recovered. */
export interface SimHttpState {
  queue: SimPromptQueue;
  executor: SimExecutor;
  /** server.number: the next prompt number. */
  number: number;
  readonly files: SimFileStore;
  readonly hub: SimSocketHub;
  readonly env: NodeEnv;
  readonly config: SimRuntimeConfig;
  readonly faults: SimFaultBook;
  readonly counters: { submitted: number; rejected: number; uploads: number };
  readonly logger: Logger;
  readonly argv: string[];
}

class HttpReply {
  constructor(
    readonly status: number,
    readonly body: Buffer | string = '',
    readonly headers: Record<string, string> = {},
  ) {}
}

const json = (body: unknown, status = 200): HttpReply =>
  new HttpReply(status, JSON.stringify(body), { 'Content-Type': JSON_TYPE });
const empty = (status = 200): HttpReply => new HttpReply(status);
const trouble = (): HttpReply => new HttpReply(500, TROUBLE, { 'Content-Type': 'text/plain; charset=utf-8' });

function sleep(ms: number, req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      req.socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    req.socket.once('close', done);
  });
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_UPLOAD_SIZE) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new PyException('JSONDecodeError', 'Expecting value');
  }
}

/** Python's `container[key]` on a decoded JSON body (anything but a dict is a TypeError → 500). */
function getItem(container: unknown, key: string): unknown {
  if (container !== null && typeof container === 'object' && !Array.isArray(container)) {
    return (container as JsonObject)[key];
  }
  throw new PyException('TypeError', `${pyTypeName(container)} indices must be integers or slices, not str`);
}

/** Python iteration over a JSON value: list items, dict keys, string characters. */
function pyIterate(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return Array.from(value);
  if (value !== null && typeof value === 'object') return Object.keys(value);
  throw new PyException('TypeError', `'${pyTypeName(value)}' object is not iterable`);
}

/** server.py's routes (each also under /api), with the status codes and bodies of ComfyUI 0.3.64. */
export class SimHttpApi {
  constructor(private readonly state: SimHttpState) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: HttpReply | null;
    try {
      reply = await this.route(req);
    } catch (err) {
      if (!(err instanceof PyException)) this.state.logger.warn({ err, url: req.url }, 'comfyui-sim: handler failed');
      reply = trouble();
    }
    if (reply === null || res.destroyed) return;
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
    res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(body.length) });
    res.end(body);
  }

  private async route(req: IncomingMessage): Promise<HttpReply | null> {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const method = req.method ?? 'GET';
    const fault = this.state.faults.take(
      'http',
      (f) =>
        (f.method === undefined || f.method === method) &&
        (f.route === path || (f.route.endsWith('*') && path.startsWith(f.route.slice(0, -1)))),
    );
    if (fault) {
      if (fault.delayMs) await sleep(fault.delayMs, req);
      if (fault.dropConnection) {
        req.socket.destroy();
        return null;
      }
      if (fault.status !== undefined) {
        return fault.status >= 500
          ? new HttpReply(fault.status, TROUBLE, { 'Content-Type': 'text/plain; charset=utf-8' })
          : empty(fault.status);
      }
    }
    if (method === 'GET') return this.get(path, url.searchParams, req);
    if (method === 'POST') {
      const body = await readBody(req);
      if (body === null) return new HttpReply(413, `Maximum request body size ${MAX_UPLOAD_SIZE} exceeded`);
      return this.post(path, body, req);
    }
    return new HttpReply(405, '405: Method Not Allowed', { 'Content-Type': 'text/plain; charset=utf-8' });
  }

  private async get(path: string, query: URLSearchParams, req: IncomingMessage): Promise<HttpReply> {
    const { state } = this;
    switch (path) {
      case '/system_stats':
        return json(this.systemStats());
      case '/features':
        return json(SERVER_FEATURES);
      case '/prompt':
        return json(this.queueInfo());
      case '/queue':
        return json({
          queue_running: state.queue.runningItems().map(queueTuple),
          queue_pending: state.queue.pendingItems().map(queueTuple),
        });
      case '/history': {
        const maxItems = query.has('max_items') ? pyInt(query.get('max_items')) : null;
        const offset = query.has('offset') ? pyInt(query.get('offset')) : -1;
        return json(state.queue.historySlice(maxItems, offset));
      }
      case '/object_info': {
        const all: JsonObject = {};
        for (const def of NODE_DEFS.values()) all[def.name] = nodeInfo(def, state.env);
        return json(all);
      }
      case '/embeddings':
      case '/extensions':
        return json([]);
      case '/models':
        return json(Object.keys(this.modelFolders()));
      case '/view':
        return this.view(query, req);
    }
    const segment = (prefix: string): string | null =>
      path.startsWith(prefix) && !path.slice(prefix.length).includes('/') && path.length > prefix.length
        ? decodeURIComponent(path.slice(prefix.length))
        : null;
    const historyId = segment('/history/');
    if (historyId !== null) {
      const entry = state.queue.historyEntry(historyId);
      return json(entry ? { [historyId]: entry } : {});
    }
    const nodeClass = segment('/object_info/');
    if (nodeClass !== null) {
      const def = NODE_DEFS.get(nodeClass);
      return json(def ? { [nodeClass]: nodeInfo(def, state.env) } : {});
    }
    const folder = segment('/models/');
    if (folder !== null) {
      const files = this.modelFolders()[folder] as string[] | undefined;
      return files ? json(files) : empty(404);
    }
    return new HttpReply(404, '', { 'Content-Type': 'application/octet-stream' });
  }

  private post(path: string, body: Buffer, req: IncomingMessage): HttpReply {
    const { state } = this;
    switch (path) {
      case '/prompt':
        return this.postPrompt(parseJson(body));
      case '/queue': {
        const data = parseJson(body);
        if (pyIn('clear', data) && pyTruthy(getItem(data, 'clear'))) state.queue.wipeQueue();
        if (pyIn('delete', data)) {
          for (const id of pyIterate(getItem(data, 'delete')))
            state.queue.deleteQueueItem((item) => item.promptId === id);
        }
        return empty();
      }
      case '/interrupt': {
        let data: unknown;
        try {
          data = parseJson(body);
        } catch {
          data = {};
        }
        const promptId = getItem(data, 'prompt_id');
        if (pyTruthy(promptId)) {
          if (state.queue.runningItems().some((item) => item.promptId === promptId)) state.executor.interrupt();
        } else {
          state.executor.interrupt();
        }
        return empty();
      }
      case '/history': {
        const data = parseJson(body);
        if (pyIn('clear', data) && pyTruthy(getItem(data, 'clear'))) state.queue.wipeHistory();
        if (pyIn('delete', data)) {
          for (const id of pyIterate(getItem(data, 'delete'))) state.queue.deleteHistory(pyStr(id));
        }
        return empty();
      }
      case '/free':
        getItem(parseJson(body), 'free_memory');
        return empty();
      case '/upload/image':
        return this.upload(body, req);
    }
    const cancel = /^\/jobs\/([^/]+)\/cancel$/.exec(path);
    if (cancel && state.config.jobsCancelRoute) return this.cancelJob(decodeURIComponent(cancel[1]));
    return new HttpReply(405, '405: Method Not Allowed', { 'Content-Type': 'text/plain; charset=utf-8' });
  }

  private postPrompt(data: unknown): HttpReply {
    const { state } = this;
    let number: number;
    if (pyIn('number', data)) {
      number = pyFloat(getItem(data, 'number'));
    } else {
      number = state.number;
      if (pyIn('front', data) && pyTruthy(getItem(data, 'front'))) number = -number;
      state.number++;
    }
    if (!pyIn('prompt', data)) {
      state.counters.rejected++;
      const error = { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} };
      return json({ error, node_errors: {} }, 400);
    }
    const prompt = getItem(data, 'prompt');
    if (prompt === null || typeof prompt !== 'object' || Array.isArray(prompt)) {
      // validate_prompt iterates it: an empty list/str has no outputs, anything else raises (plain 500).
      if ((Array.isArray(prompt) || typeof prompt === 'string') && prompt.length === 0) {
        state.counters.rejected++;
        const error = { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} };
        return json({ error, node_errors: {} }, 400);
      }
      throw new PyException('TypeError', 'prompt is not a dict');
    }
    const promptId = pyIn('prompt_id', data) ? pyStr(getItem(data, 'prompt_id')) : randomUUID();
    const partial = pyIn('partial_execution_targets', data) ? getItem(data, 'partial_execution_targets') : null;
    let valid = validatePrompt(prompt as JsonObject, partial, state.env);
    const injected = state.faults.take('validation-error');
    if (injected && valid.ok) {
      const nodeId = injected.nodeId ?? Object.keys(prompt)[0];
      const error = {
        type: 'custom_validation_failed',
        message: 'Custom validation failed for node',
        details: injected.message ?? 'simulated validation failure',
        extra_info: {},
      };
      valid = {
        ok: false,
        error: {
          type: 'prompt_outputs_failed_validation',
          message: 'Prompt outputs failed validation',
          details: '',
          extra_info: {},
        },
        nodeErrors: {
          [nodeId]: {
            errors: [error],
            dependent_outputs: valid.outputs,
            class_type:
              (prompt as JsonObject)[nodeId] === undefined
                ? null
                : getItem((prompt as JsonObject)[nodeId], 'class_type'),
          },
        },
      };
    }
    const extraData = pyIn('extra_data', data) ? getItem(data, 'extra_data') : {};
    if (pyIn('client_id', data)) {
      if (extraData === null || typeof extraData !== 'object' || Array.isArray(extraData)) {
        throw new PyException('TypeError', 'extra_data does not support item assignment');
      }
      (extraData as JsonObject).client_id = getItem(data, 'client_id');
    }
    if (!valid.ok) {
      state.counters.rejected++;
      return json({ error: valid.error, node_errors: valid.nodeErrors }, 400);
    }
    const extra = (extraData !== null && typeof extraData === 'object' ? extraData : {}) as JsonObject;
    const sensitive: JsonObject = {};
    for (const key of SENSITIVE_EXTRA_DATA_KEYS) {
      if (key in extra) {
        sensitive[key] = extra[key];
        Reflect.deleteProperty(extra, key);
      }
    }
    const item: SimQueueItem = {
      number,
      promptId,
      prompt: prompt as SimPrompt,
      extraData: extra,
      outputsToExecute: valid.outputs,
      sensitive,
    };
    state.queue.put(item);
    state.counters.submitted++;
    return json({ prompt_id: promptId, number, node_errors: valid.nodeErrors });
  }

  /** Modelled, not captured: cancels a pending job or interrupts the running one. */
  private cancelJob(id: string): HttpReply {
    const { queue, executor } = this.state;
    if (queue.deleteQueueItem((item) => item.promptId === id)) return empty();
    if (queue.runningItems().some((item) => item.promptId === id)) {
      executor.interrupt();
      return empty();
    }
    return json({ error: { type: 'job_not_found', message: `Job ${id} not found` } }, 404);
  }

  private upload(body: Buffer, req: IncomingMessage): HttpReply {
    const { state } = this;
    const form = parseForm(body, req.headers['content-type']);
    if (form === null) return empty(400);
    const image = form.get('image');
    const typeField = form.get('type');
    const type = typeof typeField === 'string' ? typeField : 'input';
    if (type !== 'input' && type !== 'temp' && type !== 'output')
      throw new PyException('UnboundLocalError', 'type_dir');
    if (image === undefined || typeof image === 'string' || image.filename === '') return empty(400);
    const subfolderField = form.get('subfolder');
    const subfolder = typeof subfolderField === 'string' ? subfolderField : '';
    let filename = image.filename;
    const dir = safeRelative(posix.normalize(subfolder === '' ? '.' : subfolder));
    if (dir === null || filename.includes('/') || safeRelative(dir, filename) === null) return empty(400);
    const bytes = image.bytes;
    const overwrite = form.get('overwrite');
    const relOf = (name: string): string => (dir === '' ? name : `${dir}/${name}`);
    let duplicate = false;
    if (overwrite !== 'true' && overwrite !== '1') {
      const ext = posix.extname(filename);
      const stem = filename.slice(0, filename.length - ext.length);
      for (let i = 1; state.files.exists(type, relOf(filename)); i++) {
        if (state.files.read(type, relOf(filename))!.equals(bytes)) {
          duplicate = true;
          break;
        }
        filename = `${stem} (${i})${ext}`;
      }
    }
    if (!duplicate) state.files.write(type, relOf(filename), bytes);
    state.counters.uploads++;
    return json({ name: filename, subfolder, type });
  }

  private async view(query: URLSearchParams, req: IncomingMessage): Promise<HttpReply> {
    const { state } = this;
    if (state.config.viewDelayMs > 0) await sleep(state.config.viewDelayMs, req);
    const requested = query.get('filename');
    if (requested === null) return empty(404);
    const annotated = annotatedFilepath(requested);
    const filename = annotated.name;
    if (filename === '') return empty(400);
    if (filename.startsWith('/') || filename.includes('..')) return empty(400);
    let type: DirType | null = annotated.type;
    if (type === null) {
      const t = query.get('type') ?? 'output';
      type = t === 'output' || t === 'input' || t === 'temp' ? t : null;
    }
    if (type === null) return empty(400);
    let dir = '';
    if (query.has('subfolder')) {
      const sub = safeRelative(query.get('subfolder') ?? '');
      if (sub === null) return empty(403);
      dir = sub;
    }
    const base = posix.basename(filename);
    const rel = dir === '' ? base : `${dir}/${base}`;
    const bytes = state.files.read(type, rel);
    if (!bytes) return empty(404);
    const contentType = MIME_BY_EXT[posix.extname(base).toLowerCase()] ?? 'application/octet-stream';
    return new HttpReply(200, bytes, { 'Content-Type': contentType, 'Content-Disposition': `filename="${base}"` });
  }

  queueInfo(): JsonObject {
    return { exec_info: { queue_remaining: this.state.queue.remaining() } };
  }

  private modelFolders(): Record<string, string[]> {
    const { models } = this.state.env;
    return {
      checkpoints: models.checkpoints,
      diffusion_models: models.diffusionModels,
      text_encoders: models.textEncoders,
      vae: models.vaes,
      loras: models.loras,
    };
  }

  private systemStats(): JsonObject {
    const vramTotal = 24 * 1024 ** 3;
    return {
      system: {
        os: 'posix',
        ram_total: totalmem(),
        ram_free: freemem(),
        comfyui_version: '0.3.64',
        required_frontend_version: '1.27.10',
        installed_templates_version: null,
        required_templates_version: '0.1.95',
        python_version: '3.11.7 (comfy-relay simulator)',
        pytorch_version: '2.13.0+sim',
        embedded_python: false,
        argv: this.state.argv,
      },
      devices: [
        {
          name: 'cuda:0 Simulated GPU : cudaMallocAsync',
          type: 'cuda',
          index: 0,
          vram_total: vramTotal,
          vram_free: vramTotal - 2 * 1024 ** 3,
          torch_vram_total: 0,
          torch_vram_free: 0,
        },
      ],
    };
  }
}

function queueTuple(item: SimQueueItem): unknown[] {
  return [item.number, item.promptId, item.prompt, item.extraData, item.outputsToExecute];
}
