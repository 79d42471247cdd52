import {
  context,
  diag,
  DiagConsoleLogger,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import {
  diagLogLevelFromString,
  getBooleanFromEnv,
  getStringFromEnv,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { hostname } from 'node:os';
import { detectResources, envDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ClientSpans } from './client-spans';
import type {
  ClientCall,
  HandlerPlace,
  HttpMiddleware,
  JobTracing,
  ObservedEnvelope,
  TraceHandle,
} from './observability.hooks';
import { ScrubbingSpanExporter } from './scrubbing-span.exporter';
import { PooledIdGenerator } from './pooled-id.generator';

/** The attribute every span of a job carries (search Jaeger/Tempo by it). */
export const JOB_ID_ATTRIBUTE = 'comfy_relay.job_id';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const UNTRACED_PATHS = ['/health', '/metrics'];
const W3C = new W3CTraceContextPropagator();

export interface TracingSettings {
  /** OTLP/HTTP base URL (…:4318); traces go to <endpoint>/v1/traces. Headers, timeout, compression: OTEL_* vars. */
  endpoint: string;
  protocol: 'http/protobuf' | 'http/json';
  serviceName: string;
  serviceVersion: string;
  role: string;
  instance: string;
  scrub: (text: string) => string;
}

export interface StartedTracing {
  tracing: JobTracing;
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry for traces only (/metrics and pino cover metrics and logs): a span per handled event, whose
 * handle the ComfyUI client gets for the calls it makes for the job (./client-spans). Loaded with a dynamic import only
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 *
 * The trace SDK itself (NodeTracerProvider, BatchSpanProcessor), not @opentelemetry/sdk-node's NodeSDK: NodeSDK loads
 * the metrics and logs SDKs, their exporters for every protocol, Zipkin, Prometheus, B3/Jaeger propagators and a YAML
 * config parser (466 modules, 10 MB of heap) for a service that uses none of them, and every major GC of a gpu
 * process marked that heap. The standard variables are honoured all the same, by the SDK classes that read them:
 * OTEL_TRACES_SAMPLER(_ARG) and OTEL_SPAN_*_LIMIT (the provider), OTEL_BSP_* (the batch processor),
 * OTEL_EXPORTER_OTLP_* (the exporter), OTEL_RESOURCE_ATTRIBUTES (the env detector); OTEL_SDK_DISABLED and
 * OTEL_LOG_LEVEL are read here as NodeSDK read them.
 */
export async function startTracing(settings: TracingSettings): Promise<StartedTracing> {
  const logLevel = getStringFromEnv('OTEL_LOG_LEVEL');
  if (logLevel !== undefined) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(logLevel) });
  // Disabled: the API's no-op tracer (as NodeSDK did), so jobs still run through the same code.
  if (getBooleanFromEnv('OTEL_SDK_DISABLED')) {
    return { tracing: new OtelJobTracing(trace.getTracer('comfy-relay')), shutdown: async () => {} };
  }
  const exporter = await otlpExporter(settings.protocol, `${settings.endpoint}/v1/traces`);
  // A resource known in full at start: the default host detector adds host.id, read asynchronously, and while any
  // attribute is pending every export waits on it. The process attributes and OTEL_RESOURCE_ATTRIBUTES are still read
  // (both detectors are synchronous); host.name is set here; the service name, from the configuration, wins.
  const resource = resourceFromAttributes({
    'host.name': hostname(),
    'service.version': settings.serviceVersion,
    'service.instance.id': settings.instance,
    'comfy_relay.role': settings.role,
  })
    .merge(detectResources({ detectors: [processDetector, envDetector] }))
    .merge(resourceFromAttributes({ 'service.name': settings.serviceName }));
  const provider = new NodeTracerProvider({
    resource,
    idGenerator: new PooledIdGenerator(),
    spanProcessors: [new BatchSpanProcessor(new ScrubbingSpanExporter(exporter, settings.scrub))],
  });
  // No global propagator: ComfyUI does not trace, so a traceparent header on each of its calls (built, validated by
  // undici, parsed by ComfyUI's server) would be work for nothing. Our processes pass the context in the event
  // envelope; an incoming API request's header is read by the middleware below.
  //
  // An async context (AsyncLocalStorage) only where an HTTP request's span must reach the code it runs: the api's
  // submits. Handlers pass their span explicitly (to their events through the job id, to their ComfyUI calls as a
  // TraceHandle), so the other roles run without one: an AsyncLocalStorage in use is paid on every promise the process
  // makes, and the batch processor's export would switch it on (it runs the exporter in a context).
  const roles = settings.role.split('+');
  provider.register({
    propagator: null,
    contextManager: roles.includes('api') || roles.includes('all') ? undefined : null,
  });
  return {
    // The provider's own tracer, not the API's global proxy: one call less on every span.
    tracing: new OtelJobTracing(provider.getTracer('comfy-relay')),
    shutdown: () => provider.shutdown(),
  };
}

/** The URL is the validated configuration's; the exporter reads the other standard OTEL_EXPORTER_OTLP_* itself. */
async function otlpExporter(protocol: TracingSettings['protocol'], url: string): Promise<SpanExporter> {
  if (protocol === 'http/json') {
    return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url });
  }
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url });
}

/** What a handler's TraceHandle is, inside this module. */
interface HandlerTrace {
  readonly jobId: string;
  /** The span as a parent context, made once for all the calls of the handler. */
  readonly context: Context;
}

class OtelJobTracing implements JobTracing {
  private readonly traceparents = new WeakMap<Span, string>();
  /** The handler spans running now, by job: the events a handler makes find their span here. */
  private readonly handlers = new Map<string, Span>();
  private readonly clientSpans: ClientSpans;

  constructor(private readonly tracer: Tracer) {
    this.clientSpans = new ClientSpans(tracer, JOB_ID_ATTRIBUTE);
  }

  traceparentFor(envelope: ObservedEnvelope): string | undefined {
    // The job's handler span (an event made while a handler of the job runs here), else an HTTP request's span.
    const active = this.handlers.get(envelope.jobId) ?? trace.getSpan(context.active());
    if (active) {
      // A handler makes several events (accepted, started, progress, completed): the span's traceparent is checked and
      // built once, for the first.
      let traceparent = this.traceparents.get(active);
      if (traceparent === undefined && trace.isSpanContextValid(active.spanContext())) {
        // An HTTP request's span learns the job it made; a handler's span has it already (set at its start).
        if (active.isRecording() && (active as Partial<ReadableSpan>).attributes?.[JOB_ID_ATTRIBUTE] === undefined) {
          active.setAttribute(JOB_ID_ATTRIBUTE, envelope.jobId);
        }
        traceparent = traceparentOf(active.spanContext());
        this.traceparents.set(active, traceparent);
      }
      if (traceparent !== undefined) return traceparent;
    }
    // A job's first event made outside any span (a Telegram update, a re-drive): the job's trace starts here.
    if (envelope.type !== 'job.requested') return undefined;
    const root = this.tracer.startSpan(
      `${envelope.type} publish`,
      { kind: SpanKind.PRODUCER, attributes: jobAttributes(envelope) },
      ROOT_CONTEXT,
    );
    root.end();
    return traceparentOf(root.spanContext());
  }

  inHandlerSpan<T>(
    envelope: ObservedEnvelope,
    place: HandlerPlace,
    run: (trace: TraceHandle) => Promise<T>,
  ): Promise<T> {
    const parent = parentContext(envelope.traceparent);
    // Every attribute is paid for on each handled event (set, checked, scrubbed, encoded): none repeats another or
    // the resource (service.instance.id is there; the group is messaging.consumer.group.name). One literal, not a
    // spread of the job's attributes and more keys after it: that shape grew a new hidden class per span.
    const attributes: Attributes = {
      [JOB_ID_ATTRIBUTE]: envelope.jobId,
      'comfy_relay.event_type': envelope.type,
      'comfy_relay.deliveries': place.deliveries,
      'messaging.system': 'redis',
      'messaging.operation.type': 'process',
      'messaging.destination.name': place.stream,
      'messaging.consumer.group.name': place.group,
      'messaging.message.id': place.entryId,
    };
    addChosenJobAttributes(attributes, envelope);
    const span = this.tracer.startSpan(
      `${place.group} ${envelope.type}`,
      { kind: SpanKind.CONSUMER, attributes },
      parent,
    );
    const { jobId } = envelope;
    const handle: HandlerTrace = { jobId, context: trace.setSpan(parent, span) };
    // Two handlers of one job at once in a process (ROLE=all): the later one's events go under the later span.
    const outer = this.handlers.get(jobId);
    this.handlers.set(jobId, span);
    return this.runInSpan(span, jobId, outer, run, handle as unknown as TraceHandle);
  }

  /** Runs the handler, records its failure on the span, ends it, and hands the job's events back to `outer`. */
  private async runInSpan<T>(
    span: Span,
    jobId: string,
    outer: Span | undefined,
    run: (trace: TraceHandle) => Promise<T>,
    handle: TraceHandle,
  ): Promise<T> {
    try {
      return await run(handle);
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
      if (this.handlers.get(jobId) === span) {
        if (outer) this.handlers.set(jobId, outer);
        else this.handlers.delete(jobId);
      }
    }
  }

  clientCall(handle: TraceHandle, method: string, origin: string, path: string): ClientCall {
    const { context: parent, jobId } = handle as unknown as HandlerTrace;
    return this.clientSpans.start(parent, jobId, method, origin, path);
  }

  readonly httpMiddleware: HttpMiddleware = (req, res, next) => {
    const path = (req.originalUrl ?? req.url ?? '/').split('?')[0] ?? '/';
    if (UNTRACED_PATHS.some((p) => path.startsWith(p))) return next();
    const method = req.method ?? 'GET';
    // A caller's traceparent header is honoured: its trace goes on through the job.
    const parent = W3C.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const span = this.tracer.startSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
      parent,
    );
    res.once('finish', () => {
      const route = typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : undefined;
      if (route) {
        span.updateName(`${method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    res.once('close', () => span.end()); // a dropped connection still ends the span (a second end() is ignored)
    context.with(trace.setSpan(parent, span), next);
  };
}

function jobAttributes(envelope: ObservedEnvelope): Attributes {
  const attributes: Attributes = { [JOB_ID_ATTRIBUTE]: envelope.jobId, 'comfy_relay.event_type': envelope.type };
  addChosenJobAttributes(attributes, envelope);
  return attributes;
}

function addChosenJobAttributes(attributes: Attributes, envelope: ObservedEnvelope): void {
  // The correlation id is the job id unless the caller chose one: only a chosen one is worth a field.
  if (envelope.correlationId !== envelope.jobId) attributes['comfy_relay.correlation_id'] = envelope.correlationId;
  const workflow = (envelope.payload as { workflow?: unknown } | null)?.workflow;
  if (typeof workflow === 'string') attributes['comfy_relay.workflow'] = workflow;
}

/** The envelope's trace context as a remote parent; a missing or malformed one starts a new trace. */
function parentContext(traceparent: unknown): Context {
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  if (!match) return ROOT_CONTEXT;
  const spanContext: SpanContext = {
    traceId: match[1],
    spanId: match[2],
    traceFlags: parseInt(match[3], 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return trace.isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : ROOT_CONTEXT;
}

function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}
