import { SpanKind, SpanStatusCode, type Attributes, type Context, type Tracer } from '@opentelemetry/api';
import type { ClientCall } from './observability.hooks';

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

interface Server {
  readonly address: string;
  readonly port: number | undefined;
}

/**
 * CLIENT spans of the HTTP calls a handler makes for its job (ComfyUI's), children of the handler's span, which the
 * caller passes explicitly (no async context). Each carries the HTTP client semantic conventions a trace viewer
 * groups by (http.request.method, url.full, server.address, server.port, http.response.status_code, error.type) and
 * the job id. Origins are few (one per ComfyUI instance): each is parsed once.
 *
 * A call's span is made when the call is over, with the start time taken when it began: every attribute, the status
 * code included, is then set once, on a span that is ended at once, instead of a live span being added to while the
 * call runs. Nothing can be a child of a call's span, so nothing needs it earlier.
 */
export class ClientSpans {
  private readonly servers = new Map<string, Server>();

  constructor(
    private readonly tracer: Tracer,
    private readonly jobIdAttribute: string,
  ) {}

  start(parent: Context, jobId: string, method: string, origin: string, path: string): ClientCall {
    return new ClientSpanCall(this, parent, jobId, method, origin, path, Date.now(), performance.now());
  }

  /**
   * Makes and ends the span of a call that is over. Its times are the SDK's own for a live span: the start is the
   * wall clock when the call began, the end that plus the monotonic clock's reading of the duration (epoch ms).
   */
  record(call: ClientSpanCall, failure?: { type: string; message: string }): void {
    const endTime = call.startTime + (performance.now() - call.startedAt);
    const server = this.serverOf(call.origin);
    const attributes: Attributes = {
      'http.request.method': call.method,
      'url.full': `${call.origin}${call.path}`,
      'server.address': server.address,
      [this.jobIdAttribute]: call.jobId,
    };
    if (server.port !== undefined) attributes['server.port'] = server.port;
    const { statusCode } = call;
    if (statusCode !== undefined) attributes['http.response.status_code'] = statusCode;
    if (failure) attributes['error.type'] = failure.type;
    else if (statusCode !== undefined && statusCode >= 400) attributes['error.type'] = String(statusCode);
    const span = this.tracer.startSpan(
      call.method,
      { kind: SpanKind.CLIENT, attributes, startTime: call.startTime },
      call.parent,
    );
    if (failure) span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    else if (statusCode !== undefined && statusCode >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(endTime);
  }

  private serverOf(origin: string): Server {
    let server = this.servers.get(origin);
    if (server === undefined) {
      const url = new URL(origin);
      server = { address: url.hostname, port: url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] };
      if (this.servers.size < 1_000) this.servers.set(origin, server);
    }
    return server;
  }
}

class ClientSpanCall implements ClientCall {
  statusCode: number | undefined;
  private done = false;

  constructor(
    private readonly spans: ClientSpans,
    readonly parent: Context,
    readonly jobId: string,
    readonly method: string,
    readonly origin: string,
    readonly path: string,
    /** Date.now() when the call began. */
    readonly startTime: number,
    /** performance.now() when the call began. */
    readonly startedAt: number,
  ) {}

  response(statusCode: number): void {
    this.statusCode = statusCode;
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.spans.record(this);
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    const code = (err as { code?: unknown } | null)?.code;
    this.spans.record(this, {
      type: typeof code === 'string' ? code : err instanceof Error ? err.name : 'Error',
      message: err instanceof Error ? err.message : String(err),
    });
  }
}
