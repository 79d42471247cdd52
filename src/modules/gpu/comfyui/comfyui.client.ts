import { Blob } from 'node:buffer';
import { createHash } from 'node:crypto';
import { silentLogger, type Logger } from '../../../common/logger';
import type { TraceHandle } from '../../../common/observability/observability.hooks';
import type { ComfyBinaryFrame } from './comfyui-binary-frame';
import { parseHistoryEntry, parseQueue } from './comfyui-history';
import { ComfyHttp } from './comfyui-http';
import { loadFormData } from './undici-parts';
import { PromptWatch, type WatchTiming } from './comfyui-prompt-watch';
import { ComfySocket, type ComfySocketOptions } from './comfyui-socket';
import type { ComfyWsMessage } from './comfyui-ws-message';
import {
  ComfyClientClosedError,
  ComfyHttpError,
  ComfyNotFoundError,
  ComfyProtocolError,
  ComfyValidationError,
} from './comfyui.errors';
import type {
  CancelResult,
  ComfyFileRef,
  ComfyHistoryEntry,
  ComfyNodeError,
  ComfyPrompt,
  ComfyQueue,
  ComfySystemStats,
  ComfyUploadedFile,
  PromptLocation,
  PromptResult,
  SubmitOptions,
  SubmitResult,
  UploadOptions,
  ViewOptions,
  WatchOptions,
} from './comfyui.types';

export interface ComfyUiClientOptions {
  baseUrl: string;
  /** Unique per process and instance: ComfyUI sends execution messages only to the submitting clientId. */
  clientId: string;
  logger?: Logger;
  /** Pool size (keep-alive connections). Default 4. */
  connections?: number;
  /** Per request: time to headers and longest pause in a body. Default 30 s. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** false: no WebSocket, progress only from polling. */
  socket?: boolean | Omit<ComfySocketOptions, 'baseUrl' | 'clientId' | 'logger'>;
  /** How long submit() waits for the socket so the run's first messages are not missed. Default 1 s. */
  socketWaitOnSubmitMs?: number;
  /**
   * A submit is always followed by a `status` broadcast. If none arrives within this many ms, the socket has been
   * deregistered server-side (another socket with our clientId closed) and is reconnected. Default 5 s.
   */
  deafCheckMs?: number;
  /**
   * How cancel() works: 'auto' tries POST /api/jobs/{id}/cancel once and remembers whether the server has it
   * (ComfyUI 0.3.64 answers 405), 'interrupt' always uses /queue delete + targeted /interrupt.
   */
  cancelMode?: 'auto' | 'jobs-api' | 'interrupt';
  watch?: Partial<WatchTiming>;
}

const DEFAULT_TIMING: WatchTiming = {
  pollIntervalMs: 1_000,
  safetyPollIntervalMs: 10_000,
  unreachableTimeoutMs: 30_000,
  previewMinIntervalMs: 500,
  missingRecheckMs: 250,
};

const MAX_UNCLAIMED_PROMPTS = 64;
const OBJECT_INFO_MAX_BYTES = 64 * 1024 * 1024;
const MAX_UNCLAIMED_FRAMES = 256;
const MAX_SUBMITS_REMEMBERED = 1_024;

type UnclaimedFrame =
  | { kind: 'message'; message: ComfyWsMessage; connection: number }
  | { kind: 'preview'; node: string | null; imageType: string; image: Buffer };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Client for one ComfyUI instance: HTTP on an undici Pool, one WebSocket (`/ws?clientId=`) for progress, and
 * per-prompt watches that fall back to polling /queue + /history. Every failure is a ComfyUiError with
 * `retriable` (see comfyui.errors.ts).
 *
 * Cleanup limits: ComfyUI 0.3.64 has no route that deletes files. Uploaded inputs and outputs stay on the
 * server's disk; `deleteHistory` only frees the history entry and `freeMemory` asks it to unload models.
 * Upload with `type: 'temp'` (and bind `loadImageName(ref)`) so inputs vanish at the server's next start.
 */
export class ComfyUiClient {
  readonly baseUrl: string;
  readonly clientId: string;
  private readonly http: ComfyHttp;
  private readonly socket: ComfySocket | null;
  private readonly logger: Logger;
  private readonly timing: WatchTiming;
  private readonly watches = new Map<string, Set<PromptWatch>>();
  private readonly cancelled = new Set<string>();
  /** Frames of prompts nobody watches yet (submit() resolves after the run may have begun); replayed by watch(). */
  private readonly unclaimed = new Map<string, UnclaimedFrame[]>();
  /** Prompt currently executing for our clientId: legacy previews carry no prompt id. */
  private executingPromptId: string | null = null;
  private jobsApi: boolean | null;
  private closing: Promise<void> | null = null;
  private readonly deafChecks = new Set<NodeJS.Timeout>();
  /** Prompts submitted with our clientId while the socket was open: the connection (socketOpens) they went out on. */
  private readonly submittedOn = new Map<string, number>();
  /** The connection on which the server was seen sending `executed` again for a cached output node; else -1. */
  private cachedOutputsResentOn = -1;
  /**
   * Times the WebSocket opened. A socket reopens after the server restarted (or the connection broke): what the
   * instance can run may have changed with it, so the pool reads its /object_info again.
   */
  socketOpens = 0;

  constructor(private readonly opts: ComfyUiClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.clientId = opts.clientId;
    this.logger = opts.logger ?? silentLogger;
    this.timing = { ...DEFAULT_TIMING, ...opts.watch };
    this.jobsApi = opts.cancelMode === 'interrupt' ? false : opts.cancelMode === 'jobs-api' ? true : null;
    this.http = new ComfyHttp({
      baseUrl: this.baseUrl,
      connections: opts.connections ?? 4,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    });
    this.socket =
      opts.socket === false
        ? null
        : new ComfySocket(
            {
              ...(typeof opts.socket === 'object' ? opts.socket : {}),
              baseUrl: this.baseUrl,
              clientId: this.clientId,
              logger: this.logger,
            },
            {
              onMessage: (m) => this.onMessage(m),
              onBinary: (f) => this.onBinary(f),
              onOpen: () => {
                this.socketOpens++;
                this.onSocketChange();
              },
              onClose: () => this.onSocketChange(),
            },
          );
  }

  /** Opens the WebSocket (also done lazily by submit/watch). */
  connect(): void {
    if (!this.closing) this.socket?.start();
  }

  get socketConnected(): boolean {
    return this.socket?.isOpen ?? false;
  }

  /** POST /prompt with our prompt_id and client_id. A 400 becomes ComfyValidationError. */
  async submit(prompt: ComfyPrompt, options: SubmitOptions): Promise<SubmitResult> {
    this.connect();
    // A first connection under way is worth a short wait; a socket in backoff is not.
    if (this.socket?.isConnecting) await this.socket.waitOpen(this.opts.socketWaitOnSubmitMs ?? 1_000);
    const sentAt = Date.now();
    const clientId = options.clientId ?? this.clientId;
    // ComfyUI routes the run's frames to the socket registered for its client_id when it runs: ours, if it is open.
    const connection = clientId === this.clientId && this.socket?.isOpen ? this.socketOpens : -1;
    const body: Obj = { prompt, client_id: clientId, prompt_id: options.promptId };
    if (options.extraData) body.extra_data = options.extraData;
    if (options.front) body.front = true;
    const { status, text } = await this.http.postJson('/prompt', body, {
      signal: options.signal,
      trace: options.trace,
    });
    const parsed = parseJsonOrNull(text);
    if (status === 200 && isObj(parsed) && typeof parsed.prompt_id === 'string') {
      this.checkSocketHears(sentAt);
      if (connection >= 0) this.rememberSubmit(parsed.prompt_id, connection);
      return {
        promptId: parsed.prompt_id,
        number: typeof parsed.number === 'number' ? parsed.number : 0,
        nodeErrors: parseNodeErrors(parsed.node_errors),
      };
    }
    if (status === 400 && isObj(parsed) && isObj(parsed.error)) {
      const error = parsed.error;
      throw new ComfyValidationError(
        typeof error.type === 'string' ? error.type : 'unknown',
        typeof error.message === 'string' ? error.message : 'validation failed',
        typeof error.details === 'string' ? error.details : '',
        parseNodeErrors(parsed.node_errors),
      );
    }
    if (status === 200) {
      throw new ComfyProtocolError(`POST /prompt answered 200 without a prompt_id: ${text.slice(0, 200)}`);
    }
    throw new ComfyHttpError(status, text.slice(0, 2_000), `POST /prompt on ${this.baseUrl} answered HTTP ${status}`);
  }

  /**
   * Follows a prompt (ours, or one submitted by a dead worker) to its end: resolves with its outputs, rejects
   * with ComfyExecutionError / ComfyInterruptedError / ComfyCancelledError / PromptWentMissingError /
   * ComfyAbortedError or the retriable error that kept the server unreachable.
   */
  watch(promptId: string, options: WatchOptions = {}): Promise<PromptResult> {
    if (this.closing) return Promise.reject(new ComfyClientClosedError(`ComfyUI client for ${this.baseUrl} is closed`));
    this.connect();
    const submittedOn = this.submittedOn.get(promptId);
    this.submittedOn.delete(promptId);
    const watches = this.watches.get(promptId) ?? new Set<PromptWatch>();
    this.watches.set(promptId, watches);
    const watch: PromptWatch = new PromptWatch(
      {
        promptId,
        baseUrl: this.baseUrl,
        clientId: this.clientId,
        timing: this.timing,
        logger: this.logger,
        locate: (signal) => this.locate(promptId, signal, options.trace),
        history: (signal) => this.history(promptId, signal, options.trace),
        socketOpen: () => this.socketConnected,
        socketCoversFromSubmit: submittedOn === this.socketOpens && this.socketConnected,
        resendsCachedOutputs: (connection) => connection === this.cachedOutputsResentOn,
        noteCachedOutputResent: (connection) => {
          this.cachedOutputsResentOn = connection;
        },
        wasCancelled: () => this.cancelled.has(promptId),
        onSettled: () => {
          watches.delete(watch);
          if (watches.size === 0 && this.watches.get(promptId) === watches) this.watches.delete(promptId);
        },
      },
      options,
    );
    if (!watch.isSettled) watches.add(watch);
    else if (watches.size === 0) this.watches.delete(promptId);
    const early = this.unclaimed.get(promptId);
    this.unclaimed.delete(promptId);
    for (const frame of early ?? []) {
      if (frame.kind === 'message') watch.onMessage(frame.message, frame.connection);
      else watch.onPreview(frame.node, frame.imageType, frame.image);
    }
    return watch.result;
  }

  /** submit() then watch(). */
  async run(prompt: ComfyPrompt, options: SubmitOptions & WatchOptions): Promise<PromptResult> {
    await this.submit(prompt, options);
    return this.watch(options.promptId, options);
  }

  async history(promptId: string, signal?: AbortSignal, trace?: TraceHandle): Promise<ComfyHistoryEntry | null> {
    const body = await this.http.getJson(`/history/${encodeURIComponent(promptId)}`, { signal, trace });
    if (!isObj(body)) throw new ComfyProtocolError('GET /history/{id} did not return an object');
    return promptId in body ? parseHistoryEntry(promptId, body[promptId]) : null;
  }

  async queue(signal?: AbortSignal, trace?: TraceHandle): Promise<ComfyQueue> {
    return parseQueue(await this.http.getJson('/queue', { signal, trace }));
  }

  /**
   * Running, pending (with its position), done (history) or missing. The queue is read first: a prompt
   * moves from the queue to history atomically, so this order cannot miss one that finishes in between.
   */
  async locate(promptId: string, signal?: AbortSignal, trace?: TraceHandle): Promise<PromptLocation> {
    const queue = await this.queue(signal, trace);
    const running = queue.running.find((i) => i.promptId === promptId);
    if (running) return { state: 'running', item: running };
    const position = queue.pending.findIndex((i) => i.promptId === promptId);
    if (position >= 0) return { state: 'pending', item: queue.pending[position], position };
    const entry = await this.history(promptId, signal, trace);
    return entry ? { state: 'done', entry } : { state: 'missing' };
  }

  /** GET /view, refusing bodies past `maxBytes` (announced or streamed). */
  async view(ref: ComfyFileRef, options: ViewOptions): Promise<Buffer> {
    const query = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder, type: ref.type });
    const path = `/view?${query.toString()}`;
    const res = await this.http.send('GET', path, { signal: options.signal, trace: options.trace });
    if (res.status === 404) {
      await this.http.dump(res);
      throw new ComfyNotFoundError(`${ref.type}/${ref.subfolder}/${ref.filename} not found on ${this.baseUrl}`);
    }
    if (res.status !== 200) throw await this.http.statusError(res, 'GET', path);
    return this.http.readBytes(res, options.maxBytes, 'GET', path, options.signal);
  }

  /** POST /upload/image (multipart). Same name with other bytes gets renamed by ComfyUI ("x (1).png"). */
  async uploadImage(bytes: Buffer, filename: string, options: UploadOptions = {}): Promise<ComfyUploadedFile> {
    const FormData = loadFormData();
    const form = new FormData();
    form.append('image', new Blob([bytes]), filename);
    if (options.overwrite) form.append('overwrite', 'true');
    if (options.subfolder) form.append('subfolder', options.subfolder);
    if (options.type) form.append('type', options.type);
    const res = await this.http.send('POST', '/upload/image', {
      body: form,
      signal: options.signal,
      trace: options.trace,
    });
    if (res.status !== 200) throw await this.http.statusError(res, 'POST', '/upload/image');
    const body = await this.http.readJson(res, 'POST', '/upload/image', options.signal);
    if (!isObj(body) || typeof body.name !== 'string') {
      throw new ComfyProtocolError('POST /upload/image did not return {name, subfolder, type}');
    }
    const type = body.type === 'temp' || body.type === 'output' ? body.type : 'input';
    return { name: body.name, subfolder: typeof body.subfolder === 'string' ? body.subfolder : '', type };
  }

  /** The LoadImage `image` value for an upload: "sub/name.png", annotated " [temp]"/" [output]" outside input. */
  static loadImageName(file: ComfyUploadedFile): string {
    const path = file.subfolder ? `${file.subfolder}/${file.name}` : file.name;
    return file.type === 'input' ? path : `${path} [${file.type}]`;
  }

  /**
   * GET /object_info (every node class; megabytes on a server with many custom nodes): its text and a hash of it,
   * so a caller parses and republishes only what changed. ComfyUI sends no ETag for it.
   */
  async objectInfo(signal?: AbortSignal): Promise<{ text: string; hash: string }> {
    const res = await this.http.send('GET', '/object_info', { signal });
    if (res.status !== 200) throw await this.http.statusError(res, 'GET', '/object_info');
    const text = await this.http.readText(res, OBJECT_INFO_MAX_BYTES, 'GET', '/object_info', signal);
    return { text, hash: createHash('sha1').update(text).digest('hex') };
  }

  async systemStats(signal?: AbortSignal): Promise<ComfySystemStats> {
    const body = await this.http.getJson('/system_stats', { signal, timeoutMs: 5_000 });
    if (!isObj(body) || !isObj(body.system)) throw new ComfyProtocolError('GET /system_stats has no system object');
    const system = body.system;
    const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
    return {
      comfyuiVersion: typeof system.comfyui_version === 'string' ? system.comfyui_version : 'unknown',
      os: typeof system.os === 'string' ? system.os : 'unknown',
      ramTotal: num(system.ram_total),
      ramFree: num(system.ram_free),
      devices: (Array.isArray(body.devices) ? body.devices : []).filter(isObj).map((d) => ({
        name: typeof d.name === 'string' ? d.name : '',
        type: typeof d.type === 'string' ? d.type : '',
        vramTotal: num(d.vram_total),
        vramFree: num(d.vram_free),
      })),
      raw: body,
    };
  }

  /**
   * Stops a prompt whether it is pending or running. With POST /api/jobs/{id}/cancel when the server has it
   * (probed once: 405, or a 404 that is not JSON, means it does not); otherwise delete it from the queue, then
   * interrupt it *by id* — in that order, so a prompt that starts between the two calls is still interrupted,
   * and the targeted interrupt never hits whatever runs next.
   */
  async cancel(promptId: string, signal?: AbortSignal, trace?: TraceHandle): Promise<CancelResult> {
    this.cancelled.add(promptId);
    if (this.cancelled.size > 10_000) this.cancelled.delete(this.cancelled.values().next().value!);
    if (this.jobsApi !== false) {
      const path = `/api/jobs/${encodeURIComponent(promptId)}/cancel`;
      const { status, text } = await this.http.postJson(path, {}, { signal, trace });
      const json = isObj(parseJsonOrNull(text));
      if (status >= 200 && status < 300) {
        this.jobsApi = true;
        this.recheck(promptId);
        return { via: 'jobs-api' };
      }
      if (status === 404 && json) {
        // The route exists; the server just has no such job (finished, or never queued).
        this.jobsApi = true;
        this.recheck(promptId);
        return { via: 'jobs-api' };
      }
      if (status === 405 || status === 404 || status === 501) {
        this.logger.info({ url: this.baseUrl, status }, 'comfyui: no /api/jobs cancel route, using interrupt');
        this.jobsApi = false;
      } else {
        throw new ComfyHttpError(
          status,
          text.slice(0, 2_000),
          `POST ${path} on ${this.baseUrl} answered HTTP ${status}`,
        );
      }
    }
    await this.deleteFromQueue([promptId], signal, trace);
    await this.interrupt(promptId, signal, trace);
    this.recheck(promptId);
    return { via: 'interrupt+delete' };
  }

  /** POST /interrupt; with a prompt id only that prompt, and only if it is running. */
  async interrupt(promptId?: string, signal?: AbortSignal, trace?: TraceHandle): Promise<void> {
    await this.expectOk('/interrupt', promptId ? { prompt_id: promptId } : {}, signal, trace);
  }

  /** POST /queue {delete}: removes pending prompts (a running one is untouched). */
  async deleteFromQueue(promptIds: string[], signal?: AbortSignal, trace?: TraceHandle): Promise<void> {
    await this.expectOk('/queue', { delete: promptIds }, signal, trace);
  }

  /** POST /history {delete}: frees history entries; the files they name stay on disk. */
  async deleteHistory(promptIds: string[], signal?: AbortSignal): Promise<void> {
    await this.expectOk('/history', { delete: promptIds }, signal);
  }

  /** POST /free: unload models and/or free cached memory before the next prompt. */
  async freeMemory(
    options: { unloadModels?: boolean; freeMemory?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<void> {
    await this.expectOk(
      '/free',
      { unload_models: options.unloadModels ?? false, free_memory: options.freeMemory ?? true },
      signal,
    );
  }

  /** Closes socket and pool; in-flight watches fail with ComfyClientClosedError. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.deafChecks) clearTimeout(timer);
    this.deafChecks.clear();
    const closed = new ComfyClientClosedError(`ComfyUI client for ${this.baseUrl} closed`);
    for (const watch of [...this.watches.values()].flatMap((set) => [...set])) watch.close(closed);
    await Promise.allSettled([this.socket?.close(), this.http.close()]);
  }

  /** ComfyUI silently stops routing to a socket whose clientId another socket closed; notice and reconnect. */
  private checkSocketHears(sentAt: number): void {
    const socket = this.socket;
    if (!socket?.isOpen) return;
    const timer = setTimeout(() => {
      this.deafChecks.delete(timer);
      if (this.closing || !socket.isOpen || socket.lastStatusAt >= sentAt) return;
      this.logger.warn({ url: this.baseUrl, clientId: this.clientId }, 'comfyui socket hears nothing; reconnecting');
      socket.reconnect();
    }, this.opts.deafCheckMs ?? 5_000);
    timer.unref();
    this.deafChecks.add(timer);
  }

  private async expectOk(path: string, body: unknown, signal?: AbortSignal, trace?: TraceHandle): Promise<void> {
    const { status, text } = await this.http.postJson(path, body, { signal, trace });
    if (status !== 200) {
      throw new ComfyHttpError(status, text.slice(0, 2_000), `POST ${path} on ${this.baseUrl} answered HTTP ${status}`);
    }
  }

  private onMessage(message: ComfyWsMessage): void {
    let promptId: string | null = null;
    switch (message.type) {
      case 'status':
      case 'feature_flags':
      case 'other':
        return;
      case 'executing':
        promptId = message.promptId;
        if (promptId !== null) this.executingPromptId = message.node === null ? null : promptId;
        break;
      default:
        promptId = message.promptId;
        if (message.type === 'execution_start' || message.type === 'progress') this.executingPromptId = promptId;
    }
    if (promptId === null) return;
    const watches = this.watches.get(promptId);
    const connection = this.socketOpens;
    if (watches) for (const watch of watches) watch.onMessage(message, connection);
    else this.keepUnclaimed(promptId, { kind: 'message', message, connection });
  }

  private rememberSubmit(promptId: string, connection: number): void {
    this.submittedOn.delete(promptId);
    this.submittedOn.set(promptId, connection);
    if (this.submittedOn.size > MAX_SUBMITS_REMEMBERED) this.submittedOn.delete(this.submittedOn.keys().next().value!);
  }

  private keepUnclaimed(promptId: string, frame: UnclaimedFrame): void {
    let early = this.unclaimed.get(promptId);
    if (!early) {
      early = [];
      this.unclaimed.set(promptId, early);
      if (this.unclaimed.size > MAX_UNCLAIMED_PROMPTS) this.unclaimed.delete(this.unclaimed.keys().next().value!);
    }
    if (frame.kind === 'preview') {
      // Only the latest preview is worth replaying; images are the bulk of the memory.
      const previous = early.findIndex((f) => f.kind === 'preview');
      if (previous >= 0) early.splice(previous, 1);
      early.push(frame);
      return;
    }
    // Past the cap keep only the frames that matter for the outcome.
    const chatter = frame.message.type === 'progress' || frame.message.type === 'progress_state';
    if (early.length < MAX_UNCLAIMED_FRAMES || !chatter) early.push(frame);
  }

  private onBinary(frame: ComfyBinaryFrame): void {
    if (frame.kind !== 'preview') return;
    const promptId = frame.metadata?.promptId ?? this.executingPromptId;
    if (promptId === null) return;
    const node = frame.metadata?.nodeId ?? null;
    const watches = this.watches.get(promptId);
    if (watches) for (const watch of watches) watch.onPreview(node, frame.imageType, frame.image);
    else this.keepUnclaimed(promptId, { kind: 'preview', node, imageType: frame.imageType, image: frame.image });
  }

  private recheck(promptId: string): void {
    for (const watch of this.watches.get(promptId) ?? []) watch.recheck();
  }

  private onSocketChange(): void {
    for (const set of this.watches.values()) for (const watch of set) watch.recheck();
  }
}

function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** node_errors → flat list; each message is "message: details" like ComfyUI's log lines. */
function parseNodeErrors(value: unknown): ComfyNodeError[] {
  if (!isObj(value)) return [];
  return Object.entries(value).map(([nodeId, entry]) => {
    const e = isObj(entry) ? entry : {};
    const errors = (Array.isArray(e.errors) ? e.errors : []).filter(isObj);
    return {
      nodeId,
      classType: typeof e.class_type === 'string' ? e.class_type : '',
      messages: errors.map((err) => {
        const message = typeof err.message === 'string' ? err.message : 'error';
        return typeof err.details === 'string' && err.details !== '' ? `${message}: ${err.details}` : message;
      }),
      errors,
      dependentOutputs: Array.isArray(e.dependent_outputs)
        ? e.dependent_outputs.filter((o): o is string => typeof o === 'string')
        : [],
    };
  });
}
