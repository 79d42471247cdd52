import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher, FormData, Pool } from 'undici';
import { startClientCall, type TraceHandle } from '../../../common/observability/observability.hooks';
import { Pool as UndiciPool } from './undici-parts';
import {
  ComfyAbortedError,
  ComfyClientClosedError,
  ComfyHttpError,
  ComfyProtocolError,
  ComfyResponseTooLargeError,
  ComfyTimeoutError,
  ComfyUiError,
  ComfyUnavailableError,
} from './comfyui.errors';

export interface ComfyHttpOptions {
  baseUrl: string;
  /** Keep-alive connections to this instance (ComfyUI is single-threaded: a few are plenty). */
  connections: number;
  /** Per request: time to response headers, and longest pause between body chunks. */
  requestTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface SendOptions {
  body?: string | Buffer | FormData;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** With tracing on: the job handler's span; the call gets a CLIENT span under it. */
  trace?: TraceHandle;
}

export interface ComfyResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
}

/** JSON bodies larger than this are refused (a full /object_info is a few MB). */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Stale keep-alive sockets fail like this; an idempotent request may be sent again once. */
const RETRY_ONCE_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * HTTP to one ComfyUI instance over an undici Pool. Every response body is either read or dumped by the helpers
 * here; callers of `send()` own that duty. Network failures come out as typed ComfyUiErrors.
 */
export class ComfyHttp {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly pool: Pool;
  private closing: Promise<void> | null = null;

  constructor(private readonly opts: ComfyHttpOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.origin = new URL(this.baseUrl).origin;
    this.pool = new UndiciPool(this.origin, {
      connections: opts.connections,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      connect: { timeout: opts.connectTimeoutMs },
    });
  }

  private get prefix(): string {
    return new URL(this.baseUrl).pathname.replace(/\/+$/, '');
  }

  async send(method: 'GET' | 'POST', path: string, opts: SendOptions = {}): Promise<ComfyResponse> {
    if (this.closing) throw new ComfyClientClosedError(`ComfyUI client for ${this.baseUrl} is closed`);
    if (opts.signal?.aborted) {
      throw new ComfyAbortedError(`${method} ${path} on ${this.baseUrl} aborted`, { cause: opts.signal.reason });
    }
    const timeout = opts.timeoutMs ?? this.opts.requestTimeoutMs;
    const fullPath = `${this.prefix}${path}`;
    for (let attempt = 0; ; attempt++) {
      // Each attempt is a call of its own: its span ends when the body has been read or dumped (or failed).
      const call = startClientCall(opts.trace, method, this.origin, fullPath);
      try {
        const res = await this.pool.request({
          method,
          path: fullPath,
          body: opts.body ?? null,
          headers: opts.headers,
          signal: opts.signal ?? null,
          headersTimeout: timeout,
          bodyTimeout: timeout,
        });
        if (call) {
          call.response(res.statusCode);
          res.body.once('close', () => call.end());
        }
        return { status: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        call?.fail(err);
        const code = errorCode(err) ?? '';
        const staleSocket = method === 'GET' && attempt === 0 && RETRY_ONCE_CODES.has(code);
        if (!staleSocket || opts.signal?.aborted) throw this.mapError(err, method, path, opts.signal);
      }
    }
  }

  /** GET expecting 200 JSON. */
  async getJson(path: string, opts: SendOptions = {}): Promise<unknown> {
    const res = await this.send('GET', path, opts);
    if (res.status !== 200) throw await this.statusError(res, 'GET', path);
    return this.readJson(res, 'GET', path, opts.signal);
  }

  /** POST a JSON body; answers the status and the text of the body (read whatever the status). */
  async postJson(path: string, body: unknown, opts: SendOptions = {}): Promise<{ status: number; text: string }> {
    const res = await this.send('POST', path, {
      ...opts,
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...opts.headers },
    });
    return { status: res.status, text: await this.readText(res, MAX_JSON_BYTES, 'POST', path, opts.signal) };
  }

  async readJson(res: ComfyResponse, method: string, path: string, signal?: AbortSignal): Promise<unknown> {
    const text = await this.readText(res, MAX_JSON_BYTES, method, path, signal);
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ComfyProtocolError(`${method} ${path} returned a body that is not JSON: ${text.slice(0, 120)}`, {
        cause: err,
      });
    }
  }

  async readText(
    res: ComfyResponse,
    limit: number,
    method: string,
    path: string,
    signal?: AbortSignal,
  ): Promise<string> {
    return (await this.readBytes(res, limit, method, path, signal)).toString('utf8');
  }

  /** Reads the whole body, aborting (and failing) as soon as it passes `limit` bytes. */
  async readBytes(
    res: ComfyResponse,
    limit: number,
    method: string,
    path: string,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    // Destroying a body makes undici emit an abort error on it; nobody else is listening by then.
    res.body.on('error', () => undefined);
    const announced = Number(res.headers['content-length']);
    if (Number.isFinite(announced) && announced > limit) {
      res.body.destroy();
      throw new ComfyResponseTooLargeError(limit, announced);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          res.body.destroy();
          throw new ComfyResponseTooLargeError(limit, Number.isFinite(announced) ? announced : null);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof ComfyUiError) throw err;
      throw this.mapError(err, method, path, signal);
    }
    return Buffer.concat(chunks);
  }

  /** The error for an unexpected status; the body is read (bounded) for the message. */
  async statusError(res: ComfyResponse, method: string, path: string): Promise<ComfyHttpError> {
    let text = '';
    try {
      text = await this.readText(res, 64 * 1024, method, path);
    } catch {
      // readText already discarded the body.
    }
    return new ComfyHttpError(res.status, text, `${method} ${path} on ${this.baseUrl} answered HTTP ${res.status}`);
  }

  async dump(res: ComfyResponse): Promise<void> {
    res.body.on('error', () => undefined);
    try {
      await res.body.dump({ limit: 64 * 1024 });
    } catch {
      res.body.destroy();
    }
  }

  mapError(err: unknown, method: string, path: string, signal?: AbortSignal): ComfyUiError {
    if (err instanceof ComfyUiError) return err;
    const where = `${method} ${path} on ${this.baseUrl}`;
    if (signal?.aborted) return new ComfyAbortedError(`${where} aborted`, { cause: signal.reason });
    const code = errorCode(err);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new ComfyTimeoutError(`${where} timed out`, { cause: err });
    }
    if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED' || this.closing) {
      return new ComfyClientClosedError(`${where}: client closed`, { cause: err });
    }
    if (code !== undefined && NETWORK_CODES.has(code)) {
      return new ComfyUnavailableError(`${where} failed: ${code}`, { cause: err });
    }
    const message = err instanceof Error ? err.message : String(err);
    return new ComfyUnavailableError(`${where} failed: ${message}`, { cause: err });
  }

  close(): Promise<void> {
    this.closing ??= this.pool.destroy().catch(() => undefined);
    return this.closing;
  }
}
