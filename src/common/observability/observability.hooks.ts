import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The seam between the code and the optional observability SDKs (OpenTelemetry, Sentry). Nothing here imports an
 * SDK: the SDK modules are loaded with a dynamic import only when configured, and register themselves here. With
 * neither configured, every function below is a no-op or a direct call (no span, no async context, no allocation).
 */

/** The slice of a job event envelope the observers read (kept structural: streams imports common, not back). */
export interface ObservedEnvelope {
  readonly type: string;
  readonly jobId: string;
  readonly correlationId: string;
  readonly payload: unknown;
  traceparent?: string;
}

/** Where a stream handler runs: what a consumer span and an error report say about it. */
export interface HandlerPlace {
  readonly group: string;
  readonly consumer: string;
  readonly stream: string;
  readonly entryId: string;
  readonly deliveries: number;
  /** The entry's raw field/value list (for a group's rule on which entries it only acknowledges). */
  readonly fields?: readonly string[];
}

/** What is known about the job a handler works on, for events and errors raised inside it. */
export interface JobScope {
  readonly jobId: string;
  readonly correlationId: string;
  readonly workflow?: string;
}

export type HttpMiddleware = (
  req: IncomingMessage & { route?: { path?: unknown }; baseUrl?: string; originalUrl?: string },
  res: ServerResponse,
  next: () => void,
) => void;

declare const traceHandle: unique symbol;
/**
 * A handler's span, handed to the handler and passed on explicitly to the outgoing calls it makes for the job
 * (ComfyUI's): opaque outside the tracing module. Explicit, not an async context: an AsyncLocalStorage in use is paid
 * on every promise of the process, and a gpu process makes hundreds per job.
 */
export interface TraceHandle {
  readonly [traceHandle]: true;
}

/** An outgoing HTTP call's span: told the response status, then ended (or failed). */
export interface ClientCall {
  response(statusCode: number): void;
  end(): void;
  fail(err: unknown): void;
}

export interface JobTracing {
  /** The W3C traceparent an event being made now carries (its job's handler span, the active span, or a new root). */
  traceparentFor(envelope: ObservedEnvelope): string | undefined;
  /** Runs a stream handler in a span that continues the trace its envelope carries; the handler gets the span. */
  inHandlerSpan<T>(
    envelope: ObservedEnvelope,
    place: HandlerPlace,
    run: (trace: TraceHandle) => Promise<T>,
  ): Promise<T>;
  /** A CLIENT span for an HTTP call made for a handler (a child of its span). */
  clientCall(trace: TraceHandle, method: string, origin: string, path: string): ClientCall;
  /** Express middleware: one server span per HTTP request, continuing a caller's traceparent header. */
  readonly httpMiddleware: HttpMiddleware;
}

export interface ErrorReporting {
  /** Sees every event as it is made; reports the ones that end a job badly. */
  jobEvent(envelope: ObservedEnvelope, scope: JobScope | undefined): void;
  /** An error nobody handled (a 500 of the API, a failed start). */
  error(err: unknown, context: Readonly<Record<string, string>>): void;
}

let tracing: JobTracing | undefined;
let reporting: ErrorReporting | undefined;
const jobScope = new AsyncLocalStorage<JobScope>();
const acknowledgedOnly = new Map<string, (fields: readonly string[]) => boolean>();

export function installTracing(t: JobTracing | undefined): void {
  tracing = t;
}

export function installErrorReporting(r: ErrorReporting | undefined): void {
  reporting = r;
}

/** Called by makeEnvelope for every event: stamps the trace context, lets the error reporter see it. */
export function observeNewEnvelope(envelope: ObservedEnvelope): void {
  if (tracing) {
    const traceparent = tracing.traceparentFor(envelope);
    if (traceparent !== undefined) envelope.traceparent = traceparent;
  }
  reporting?.jobEvent(envelope, jobScope.getStore());
}

/**
 * Declares the entries a consumer group reads only to acknowledge them (its handler returns without doing anything):
 * they get no span. The projector's, for one: the events a worker's ledger already applied to the view as it
 * appended them (inside that worker's span) — in a running pipeline, nearly all of them.
 */
export function onlyAcknowledges(group: string, entry: (fields: readonly string[]) => boolean): void {
  acknowledgedOnly.set(group, entry);
}

/**
 * Runs a stream handler: directly when nothing observes, else in the job's scope (and span, with tracing). The handler
 * gets its span's handle (undefined without tracing) to pass to the calls it makes for the job.
 */
export function runJobHandler<T>(
  envelope: ObservedEnvelope,
  place: HandlerPlace,
  run: (trace: TraceHandle | undefined) => Promise<T>,
): Promise<T> {
  const t = tracing && !acknowledgedOnly.get(place.group)?.(place.fields ?? []) ? tracing : undefined;
  const traced = (): Promise<T> => (t ? t.inHandlerSpan(envelope, place, run) : run(undefined));
  // The job scope is for the error reporter only: each AsyncLocalStorage in use is paid for on every promise the
  // process makes, so without Sentry there is none.
  return reporting ? jobScope.run(scopeOf(envelope), traced) : traced();
}

/** The span of an outgoing HTTP call made for a traced handler; undefined (nothing to do) without one. */
export function startClientCall(
  trace: TraceHandle | undefined,
  method: string,
  origin: string,
  path: string,
): ClientCall | undefined {
  return trace && tracing ? tracing.clientCall(trace, method, origin, path) : undefined;
}

export function reportError(err: unknown, context: Readonly<Record<string, string>> = {}): void {
  reporting?.error(err, context);
}

/** The tracing middleware for the HTTP server, or undefined when tracing is off. */
export function httpTracingMiddleware(): HttpMiddleware | undefined {
  return tracing?.httpMiddleware;
}

function scopeOf(envelope: ObservedEnvelope): JobScope {
  const payload = envelope.payload as { workflow?: unknown } | null;
  const workflow = typeof payload?.workflow === 'string' ? payload.workflow : undefined;
  return { jobId: envelope.jobId, correlationId: envelope.correlationId, ...(workflow ? { workflow } : {}) };
}
