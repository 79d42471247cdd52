import { SpanKind, SpanStatusCode, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { ClientCall } from './observability.hooks';

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/**
 * CLIENT spans of the HTTP calls a handler makes for its job (ComfyUI's), children of the handler's span, which the
 * caller passes explicitly (no async context). Each carries the HTTP client semantic conventions a trace viewer
 * groups by (http.request.method, url.full, server.address, server.port, http.response.status_code, error.type) and
 * the job id. Origins are few (one per ComfyUI instance): each is parsed once.
 */
export class ClientSpans {
  private readonly servers = new Map<string, { address: string; port: number | undefined }>();

  constructor(
    private readonly tracer: Tracer,
    private readonly jobIdAttribute: string,
  ) {}

  start(parent: Context, jobId: string, method: string, origin: string, path: string): ClientCall {
    const server = this.serverOf(origin);
    const attributes: Attributes = {
      'http.request.method': method,
      'url.full': `${origin}${path}`,
      'server.address': server.address,
      [this.jobIdAttribute]: jobId,
    };
    if (server.port !== undefined) attributes['server.port'] = server.port;
    return new SpanCall(this.tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes }, parent));
  }

  private serverOf(origin: string): { address: string; port: number | undefined } {
    let server = this.servers.get(origin);
    if (server === undefined) {
      const url = new URL(origin);
      server = { address: url.hostname, port: url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] };
      if (this.servers.size < 1_000) this.servers.set(origin, server);
    }
    return server;
  }
}

class SpanCall implements ClientCall {
  constructor(private readonly span: Span) {}

  response(statusCode: number): void {
    this.span.setAttribute('http.response.status_code', statusCode);
    if (statusCode >= 400) {
      this.span.setAttribute('error.type', String(statusCode));
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  end(): void {
    this.span.end();
  }

  fail(err: unknown): void {
    const code = (err as { code?: unknown } | null)?.code;
    this.span.setAttribute('error.type', typeof code === 'string' ? code : err instanceof Error ? err.name : 'Error');
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    this.span.end();
  }
}
