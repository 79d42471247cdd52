import type { IncomingMessage, ServerResponse } from 'node:http';
import { freemem, totalmem } from 'node:os';
import { PyException, pyInt, pyStr, pyTruthy } from './comfyui-sim-python.util';
import { SERVER_FEATURES, MAX_UPLOAD_SIZE } from './comfyui-sim-socket-hub';
import { pyIn } from './comfyui-sim-validator';
import type { JsonObject, SimQueueItem } from './comfyui-sim.types';
import { NODE_DEFS, nodeInfo } from './nodes/node-registry';
import { uploadImage, viewFile } from './routes/files.route';
import {
  empty,
  getItem,
  HttpReply,
  json,
  parseJson,
  pyIterate,
  readBody,
  sleep,
  text,
  trouble,
} from './routes/http-reply';
import type { SimHttpState } from './routes/http-state';
import { postPrompt } from './routes/prompt.route';

export type { SimHttpState } from './routes/http-state';

/** The parameter of /history/…, /object_info/…, /models/…, /jobs/…/cancel: counted as `{id}`. */
const PATH_PARAMETER = /(?<=^\/(?:history|object_info|models|jobs))\/[^/]+/;

const notFound = (): HttpReply => new HttpReply(404, '', { 'Content-Type': 'application/octet-stream' });
const methodNotAllowed = (): HttpReply => text(405, '405: Method Not Allowed');

/**
 * server.py's routes, each also under /api, with ComfyUI 0.3.64's status codes and bodies: unknown GET → 404,
 * unknown POST → 405 (the static route swallows it), uncaught errors → aiohttp's plain-text 500.
 */
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

  queueInfo(): JsonObject {
    return { exec_info: { queue_remaining: this.state.queue.remaining() } };
  }

  private async route(req: IncomingMessage): Promise<HttpReply | null> {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const method = req.method ?? 'GET';
    const route = `${method} ${path.replace(PATH_PARAMETER, '/{id}')}`;
    this.state.counters.requests.set(route, (this.state.counters.requests.get(route) ?? 0) + 1);
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
      if (fault.status !== undefined) return fault.status >= 500 ? trouble(fault.status) : empty(fault.status);
    }
    if (method === 'GET') return this.get(path, url.searchParams, req);
    if (method !== 'POST') return methodNotAllowed();
    const body = await readBody(req);
    if (body === null) return text(413, `Maximum request body size ${MAX_UPLOAD_SIZE} exceeded`);
    return this.post(path, body, req);
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
        // Pending items in heap order, as ComfyUI lists them.
        return json({
          queue_running: state.queue.runningItems().map(queueTuple),
          queue_pending: state.queue.pendingItems().map(queueTuple),
        });
      case '/history': {
        const maxItems = query.has('max_items') ? pyInt(query.get('max_items')) : null;
        const offset = query.has('offset') ? pyInt(query.get('offset')) : -1;
        return json(state.queue.historySlice(maxItems, offset));
      }
      case '/object_info':
        return json(Object.fromEntries([...NODE_DEFS.values()].map((def) => [def.name, nodeInfo(def, state.env)])));
      case '/embeddings':
      case '/extensions':
        return json([]);
      case '/models':
        return json(Object.keys(this.modelFolders()));
      case '/view':
        return viewFile(state, query, req);
    }
    const param = (prefix: string): string | null => {
      const rest = path.slice(prefix.length);
      return path.startsWith(prefix) && rest !== '' && !rest.includes('/') ? decodeURIComponent(rest) : null;
    };
    const historyId = param('/history/');
    if (historyId !== null) {
      const entry = state.queue.historyEntry(historyId);
      return json(entry ? { [historyId]: entry } : {});
    }
    const nodeClass = param('/object_info/');
    if (nodeClass !== null) {
      const def = NODE_DEFS.get(nodeClass);
      return json(def ? { [nodeClass]: nodeInfo(def, state.env) } : {});
    }
    const folder = param('/models/');
    if (folder !== null) {
      const files = this.modelFolders()[folder] as string[] | undefined;
      return files ? json(files) : empty(404);
    }
    return notFound();
  }

  private post(path: string, body: Buffer, req: IncomingMessage): HttpReply {
    const { queue, executor } = this.state;
    switch (path) {
      case '/prompt':
        return postPrompt(this.state, parseJson(body));
      case '/queue': {
        // Only pending items can be deleted; unknown and running ids are silently ignored.
        const data = parseJson(body);
        if (pyIn('clear', data) && pyTruthy(getItem(data, 'clear'))) queue.wipeQueue();
        if (pyIn('delete', data)) {
          for (const id of pyIterate(getItem(data, 'delete'))) queue.deleteQueueItem((item) => item.promptId === id);
        }
        return empty();
      }
      case '/interrupt': {
        let data: unknown = {};
        try {
          data = parseJson(body);
        } catch {
          // An empty or broken body is a global interrupt.
        }
        const promptId = getItem(data, 'prompt_id');
        const targeted = pyTruthy(promptId);
        if (!targeted || queue.runningItems().some((item) => item.promptId === promptId)) executor.interrupt();
        return empty();
      }
      case '/history': {
        const data = parseJson(body);
        if (pyIn('clear', data) && pyTruthy(getItem(data, 'clear'))) queue.wipeHistory();
        if (pyIn('delete', data)) {
          for (const id of pyIterate(getItem(data, 'delete'))) queue.deleteHistory(pyStr(id));
        }
        return empty();
      }
      case '/free':
        getItem(parseJson(body), 'free_memory');
        return empty();
      case '/upload/image':
        return uploadImage(this.state, body, req.headers['content-type']);
    }
    const cancel = /^\/jobs\/([^/]+)\/cancel$/.exec(path);
    if (cancel && this.state.config.jobsCancelRoute) return this.cancelJob(decodeURIComponent(cancel[1]));
    return methodNotAllowed();
  }

  /** Modelled, not captured (0.3.64 has no such route): cancels a pending job or interrupts the running one. */
  private cancelJob(id: string): HttpReply {
    const { queue, executor } = this.state;
    if (queue.deleteQueueItem((item) => item.promptId === id)) return empty();
    if (queue.runningItems().some((item) => item.promptId === id)) {
      executor.interrupt();
      return empty();
    }
    return json({ error: { type: 'job_not_found', message: `Job ${id} not found` } }, 404);
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
