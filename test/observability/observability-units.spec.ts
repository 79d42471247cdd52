import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMilliseconds } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ClientSpans } from '../../src/common/observability/client-spans';
import { createLogScrubber } from '../../src/common/log-redaction';
import { deepScrub } from '../../src/common/observability/deep-scrub';
import { jobFailureOf } from '../../src/common/observability/job-failure.report';
import {
  installTracing,
  onlyAcknowledges,
  runJobHandler,
  type JobTracing,
  type TraceHandle,
} from '../../src/common/observability/observability.hooks';
import { PooledIdGenerator } from '../../src/common/observability/pooled-id.generator';
import { ScrubbingSpanExporter } from '../../src/common/observability/scrubbing-span.exporter';
import { jobTraceId, traceIdOf } from '../../src/common/observability/traceparent';
import { secretValuesOf } from '../../src/common/secret-values';
import { loadConfig } from '../../src/config/config.loader';
import { decodeEntry, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context in the event envelope', () => {
  const base = { type: 'job.cancel-requested', v: 1, eventId: 'e1', jobId: 'j1', correlationId: 'j1' };
  const entry = (extra: object) => [
    ENVELOPE_FIELD,
    JSON.stringify({ ...base, occurredAt: new Date(0).toISOString(), actor: 'api', payload: { by: 'user' }, ...extra }),
  ];

  it('decodes an entry written before the field existed, and one that carries it (kept as written)', () => {
    const old = decodeEntry(entry({}));
    expect(old.ok && old.envelope.traceparent).toBe(undefined);
    const traced = decodeEntry(entry({ traceparent: TRACEPARENT }));
    expect(traced.ok && traced.envelope.traceparent).toBe(TRACEPARENT);
  });

  it('makes envelopes without the field when tracing is off', () => {
    const envelope = makeEnvelope('job.cancel-requested', { jobId: 'j1', actor: 'api' }, { by: 'user' });
    expect('traceparent' in envelope).toBe(false);
  });

  it('reads a trace id only from a valid traceparent, and the job trace from its request first', () => {
    expect(traceIdOf(TRACEPARENT)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of [
      undefined,
      42,
      '',
      'garbage',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      TRACEPARENT.toUpperCase(),
    ]) {
      expect(traceIdOf(bad)).toBeUndefined();
    }
    const other = '00-11111111111111111111111111111111-00f067aa0ba902b7-01';
    expect(
      jobTraceId([
        { type: 'job.cancel-requested', traceparent: other },
        { type: 'job.requested', traceparent: TRACEPARENT },
      ]),
    ).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(jobTraceId([{ type: 'job.requested' }, { type: 'job.started', traceparent: other }])).toBe('1'.repeat(32));
    expect(jobTraceId([{ type: 'job.requested', traceparent: 'x' }])).toBeUndefined();
  });
});

describe('which job events are reported to Sentry', () => {
  const failed = (payload: object) => ({ type: 'job.failed', jobId: 'j', correlationId: 'j', payload });

  it('a final failure of the fleet or ours, and every dead letter; not retries, not the request’s own fault', () => {
    expect(
      jobFailureOf(failed({ code: 'comfyui_execution_error', message: 'm', retriable: false, willRetry: false })),
    ).toEqual({ kind: 'job.failed', code: 'comfyui_execution_error', message: 'm' });
    expect(
      jobFailureOf(failed({ code: 'comfyui_unavailable', message: 'm', retriable: true, willRetry: true })),
    ).toBeUndefined();
    // Retries exhausted: its job.dead-lettered is the one report.
    expect(
      jobFailureOf(failed({ code: 'comfyui_unavailable', message: 'm', retriable: true, willRetry: false })),
    ).toBeUndefined();
    for (const code of ['comfyui_validation', 'unknown_workflow', 'bad_inputs', 'input_expired']) {
      expect(jobFailureOf(failed({ code, message: 'm', retriable: false, willRetry: false }))).toBeUndefined();
    }
    expect(
      jobFailureOf({
        type: 'job.dead-lettered',
        jobId: 'j',
        correlationId: 'j',
        payload: { originalType: 'job.requested', reason: 'r' },
      }),
    ).toEqual({ kind: 'job.dead-lettered', code: 'dead_letter:job.requested', message: 'r' });
    expect(jobFailureOf({ type: 'job.completed', jobId: 'j', correlationId: 'j', payload: {} })).toBeUndefined();
  });
});

describe('secrets kept out of error events and spans', () => {
  const config = loadConfig({
    TELEGRAM_BOT_TOKEN: '123456789:AAHsecretBotTokenValue_0123456789',
    API_KEYS: 'an-api-key-that-is-secret-0001',
    REDIS_URL: 'redis://:redis-password-77@redis:6379',
    SENTRY_DSN: 'https://publickeyabcdef0123@sentry.example.org/7',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=otlp-header-secret-55,x-tenant=acme',
  });
  const scrub = createLogScrubber(secretValuesOf(config));
  const secrets = [
    'AAHsecretBotTokenValue_0123456789',
    'an-api-key-that-is-secret-0001',
    'redis-password-77',
    'publickeyabcdef0123',
    'otlp-header-secret-55',
  ];
  const leaky = secrets.map((s) => `value ${s} here`).join(' | ');

  it('every credential the configuration holds is a secret value', () => {
    expect(secretValuesOf(config)).toEqual(
      expect.arrayContaining(['123456789:AAHsecretBotTokenValue_0123456789', ...secrets]),
    );
  });

  it('scrubs a Sentry event deeply: strings anywhere, and credential-named keys whatever their value', () => {
    const event = {
      message: leaky,
      exception: { values: [{ type: 'Error', value: leaky }] },
      breadcrumbs: [{ data: { url: `https://api.telegram.org/bot123456789:AAHsecretBotTokenValue_0123456789/getMe` } }],
      request: { headers: { Authorization: 'opaque', 'X-Api-Key': 'opaque2', accept: 'json' } },
      tags: { jobId: 'j1' },
    };
    const out = deepScrub(event, scrub);
    const text = JSON.stringify(out);
    for (const s of secrets) expect(text).not.toContain(s);
    expect(out.request.headers).toEqual({ Authorization: '[redacted]', 'X-Api-Key': '[redacted]', accept: 'json' });
    expect(out.tags).toEqual({ jobId: 'j1' });
    expect(event.message).toBe(leaky); // the original is left alone
  });

  it('scrubs span names, attributes, event attributes and status before export; the rest reads through', async () => {
    const exported: ReadableSpan[] = [];
    const inner: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans);
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: () => Promise.resolve(),
    };
    const span = {
      name: `GET ${leaky}`,
      attributes: { 'url.full': leaky, 'comfy_relay.job_id': 'j1', 'http.response.status_code': 200, list: [leaky] },
      events: [{ name: 'exception', attributes: { 'exception.message': leaky }, time: [0, 0] }],
      status: { code: 2, message: leaky },
      spanContext: () => ({ traceId: 't'.repeat(32), spanId: 's'.repeat(16), traceFlags: 1 }),
    } as unknown as ReadableSpan;
    const exporter = new ScrubbingSpanExporter(inner, scrub);
    await new Promise((resolve) => exporter.export([span], resolve));
    const text = JSON.stringify(exported.map((s) => ({ n: s.name, a: s.attributes, e: s.events, st: s.status })));
    for (const s of secrets) expect(text).not.toContain(s);
    expect(exported[0]!.attributes['comfy_relay.job_id']).toBe('j1');
    expect(exported[0]!.attributes['http.response.status_code']).toBe(200);
    expect(exported[0]!.spanContext().traceId).toBe('t'.repeat(32));
  });

  it('hands a span with nothing to scrub on as it is (no copy per span on the common path)', async () => {
    const exported: ReadableSpan[] = [];
    const inner: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans);
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: () => Promise.resolve(),
    };
    const clean = (jobId: string) =>
      ({
        name: 'GET',
        attributes: { 'url.full': 'http://127.0.0.1:8188/history/p1', 'comfy_relay.job_id': jobId, list: ['a'] },
        events: [{ name: 'e', attributes: { note: 'fine' }, time: [0, 0] }],
        status: { code: 0 },
      }) as unknown as ReadableSpan;
    const spans = [clean('j1'), clean('j2'), clean('j1')];
    const exporter = new ScrubbingSpanExporter(inner, scrub);
    await new Promise((resolve) => exporter.export(spans, resolve));
    expect(exported).toHaveLength(3);
    exported.forEach((span, i) => expect(span).toBe(spans[i]));
  });
});

describe('which stream handlers run in a span', () => {
  const envelope = { type: 'job.accepted', jobId: 'j1', correlationId: 'j1', payload: {} };
  const place = (fields: string[]) => ({
    group: 'units-group',
    consumer: 'c',
    stream: 's',
    entryId: '1-0',
    deliveries: 1,
    fields,
  });
  afterEach(() => installTracing(undefined));

  it('every entry with tracing on, except those its group declared it only acknowledges', async () => {
    const spans: string[] = [];
    const tracing: JobTracing = {
      traceparentFor: () => undefined,
      inHandlerSpan: (_e, p, run) => {
        spans.push(p.entryId);
        return run({} as TraceHandle);
      },
      clientCall: () => ({ response: () => undefined, end: () => undefined, fail: () => undefined }),
      httpMiddleware: (_req, _res, next) => next(),
    };
    installTracing(tracing);
    onlyAcknowledges('units-group', (fields) => fields.includes('skip-me'));
    let ran = 0;
    const run = () => Promise.resolve(ran++);
    await runJobHandler(envelope, place(['e', '{}', 'skip-me', '1']), run);
    expect(spans).toEqual([]);
    await runJobHandler(envelope, place(['e', '{}']), run);
    await runJobHandler(envelope, { ...place([]), group: 'other-group', fields: ['skip-me', '1'] }, run);
    expect(spans).toEqual(['1-0', '1-0']);
    expect(ran).toBe(3); // the handler itself always runs
  });
});

describe('trace and span ids from a pool of random bytes', () => {
  it('are lowercase hex of W3C length, never all zero, and do not repeat across refills of the pool', () => {
    const ids = new PooledIdGenerator();
    const spanIds = new Set<string>();
    // 4 KiB a pool: 2 000 span ids and 500 trace ids use it up several times over.
    for (let i = 0; i < 2_000; i++) {
      const id = ids.generateSpanId();
      expect(id).toMatch(/^[0-9a-f]{16}$/);
      expect(id).not.toBe('0'.repeat(16));
      spanIds.add(id);
    }
    expect(spanIds.size).toBe(2_000);
    const traceIds = new Set(Array.from({ length: 500 }, () => ids.generateTraceId()));
    expect(traceIds.size).toBe(500);
    for (const id of traceIds) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('makes an id whose random bytes came out all zero valid, as the SDK does (last byte 1)', () => {
    const ids = new PooledIdGenerator();
    ids.generateSpanId(); // the pool is filled now
    (ids as unknown as { pool: Buffer }).pool.fill(0);
    expect(ids.generateSpanId()).toBe(`${'0'.repeat(14)}01`);
  });
});

describe('ComfyUI call spans', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('units');
  const spans = new ClientSpans(tracer, 'comfy_relay.job_id');
  afterEach(() => exporter.reset());
  afterAll(() => provider.shutdown());

  it('a CLIENT child of the handler span, made when the call is over, with its whole duration and every attribute', async () => {
    const handler = tracer.startSpan('gpu job.requested', {}, ROOT_CONTEXT);
    const parent = trace.setSpan(ROOT_CONTEXT, handler);
    const call = spans.start(parent, 'j1', 'GET', 'http://127.0.0.1:8188', '/view?filename=a.png');
    expect(exporter.getFinishedSpans()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    call.response(200);
    call.end();
    call.end(); // a second end (a body closed twice) makes no second span
    handler.end();
    const [span] = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    expect(exporter.getFinishedSpans()).toHaveLength(2);
    expect(span!.name).toBe('GET');
    expect(span!.parentSpanContext?.spanId).toBe(handler.spanContext().spanId);
    expect(span!.spanContext().traceId).toBe(handler.spanContext().traceId);
    expect(span!.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': 'http://127.0.0.1:8188/view?filename=a.png',
      'server.address': '127.0.0.1',
      'server.port': 8188,
      'comfy_relay.job_id': 'j1',
      'http.response.status_code': 200,
    });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    // Timed from the call's start, not from when the span was made; never before its parent began.
    expect(hrTimeToMilliseconds(span!.duration)).toBeGreaterThanOrEqual(19);
    expect(hrTimeToMilliseconds(span!.startTime)).toBeGreaterThanOrEqual(
      hrTimeToMilliseconds((handler as unknown as ReadableSpan).startTime),
    );
  });

  it('an error status for a 4xx/5xx answer and for a call that failed without one', () => {
    const parent = trace.setSpan(ROOT_CONTEXT, tracer.startSpan('handler', {}, ROOT_CONTEXT));
    const refused = spans.start(parent, 'j2', 'POST', 'https://comfy.example', '/prompt');
    refused.response(503);
    refused.end();
    const broken = spans.start(parent, 'j2', 'GET', 'https://comfy.example', '/history/p');
    broken.fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    broken.end(); // undici still closes the body: no second span
    const [first, second] = exporter.getFinishedSpans();
    expect(exporter.getFinishedSpans()).toHaveLength(2);
    expect(first!.attributes).toMatchObject({
      'server.port': 443,
      'http.response.status_code': 503,
      'error.type': '503',
    });
    expect(first!.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(second!.attributes['error.type']).toBe('ECONNRESET');
    expect(second!.attributes['http.response.status_code']).toBeUndefined();
    expect(second!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'socket hang up' });
  });
});
