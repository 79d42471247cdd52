import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';

/** What undici publishes on its diagnostics channels (the fields read here; undici's own types are wider). */
interface UndiciRequest {
  readonly origin: string | URL;
  readonly method: string;
  readonly path: string;
}

export interface UndiciSpanOptions {
  /** An attribute taken from the context the request is made in (the job id), copied onto its span. */
  contextAttribute: { name: string; of(ctx: Context): string | undefined };
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/**
 * One CLIENT span per undici request made inside a span (ComfyUI calls while a job runs, Bot API calls while a
 * delivery runs), read off undici's diagnostics channels — the channels @opentelemetry/instrumentation-undici reads,
 * without what made it the gpu process's largest tracing cost at zero-time jobs: a URL object parsed per request
 * (url.full, url.path, url.query, url.scheme from it), the request headers re-parsed for user_agent, a hook on the
 * socket for network.peer.*, a request-duration histogram, and its hooks run through try/catch wrappers.
 *
 * Each span carries the HTTP client semantic conventions a trace viewer groups by (http.request.method, url.full,
 * server.address, server.port, http.response.status_code, error.type) and the attributes `fromContext` gives.
 * Requests outside any span (the pool's health probes) cost one context lookup. No traceparent header is sent:
 * ComfyUI does not trace, and our own processes carry the context in the event envelope.
 */
export function traceUndiciRequests(tracer: Tracer, options: UndiciSpanOptions): () => void {
  const spans = new WeakMap<object, Span>();
  // Origins are few (one per ComfyUI instance, the Bot API): each is parsed once.
  const servers = new Map<string, { address: string; port: number | undefined }>();
  const serverOf = (origin: string): { address: string; port: number | undefined } => {
    let server = servers.get(origin);
    if (server === undefined) {
      const url = new URL(origin);
      server = { address: url.hostname, port: url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] };
      if (servers.size < 1_000) servers.set(origin, server);
    }
    return server;
  };
  const { name: contextAttribute, of: contextValue } = options.contextAttribute;

  const onCreate = (message: unknown): void => {
    const { request } = message as { request: UndiciRequest };
    const parent = context.active();
    if (trace.getSpan(parent) === undefined || isTracingSuppressed(parent) || request.method === 'CONNECT') return;
    const origin = typeof request.origin === 'string' ? request.origin : request.origin.origin;
    const server = serverOf(origin);
    const attributes: Attributes = {
      'http.request.method': request.method,
      'url.full': `${origin}${request.path}`,
      'server.address': server.address,
    };
    if (server.port !== undefined) attributes['server.port'] = server.port;
    const value = contextValue(parent);
    if (value !== undefined) attributes[contextAttribute] = value;
    spans.set(request, tracer.startSpan(request.method, { kind: SpanKind.CLIENT, attributes }, parent));
  };
  const onHeaders = (message: unknown): void => {
    const { request, response } = message as { request: object; response: { statusCode: number } };
    const span = spans.get(request);
    if (span === undefined) return;
    span.setAttribute('http.response.status_code', response.statusCode);
    if (response.statusCode >= 400) {
      span.setAttribute('error.type', String(response.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  };
  // The body has been read to its end (or dumped): the call is over.
  const onDone = (message: unknown): void => {
    const { request } = message as { request: object };
    const span = spans.get(request);
    if (span === undefined) return;
    spans.delete(request);
    span.end();
  };
  const onError = (message: unknown): void => {
    const { request, error } = message as { request: object; error: unknown };
    const span = spans.get(request);
    if (span === undefined) return;
    spans.delete(request);
    const code = (error as { code?: unknown } | null)?.code;
    span.setAttribute('error.type', typeof code === 'string' ? code : error instanceof Error ? error.name : 'Error');
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.end();
  };

  const subscriptions: [string, (message: unknown) => void][] = [
    ['undici:request:create', onCreate],
    ['undici:request:headers', onHeaders],
    ['undici:request:trailers', onDone],
    ['undici:request:error', onError],
  ];
  for (const [name, handler] of subscriptions) subscribe(name, handler);
  return () => {
    for (const [name, handler] of subscriptions) unsubscribe(name, handler);
  };
}
