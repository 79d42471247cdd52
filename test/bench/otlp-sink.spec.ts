import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OtlpSink } from '../../bench/lib/otlp-sink';

/** The bench's stand-in collector counts the spans of every export by name, in either OTLP/HTTP encoding. */
describe('bench OTLP sink', () => {
  const sink = new OtlpSink();
  let endpoint = '';

  beforeAll(async () => {
    endpoint = await sink.start();
  });

  afterAll(() => sink.stop());

  /** The bodies the OTLP/HTTP exporters send (their serializers; the exporters' transport does not load in jest). */
  function threeSpans() {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('sink-test');
    for (const name of ['gpu job.requested', 'GET', 'GET']) {
      tracer.startSpan(name, { attributes: { 'comfy_relay.job_id': 'j1', 'url.full': 'http://x/view?a=1' } }).end();
    }
    return exporter.getFinishedSpans();
  }

  it.each([
    ['http/protobuf', 'application/x-protobuf', () => ProtobufTraceSerializer.serializeRequest(threeSpans())],
    ['http/json', 'application/json', () => JsonTraceSerializer.serializeRequest(threeSpans())],
  ])('%s: every span counted, by name', async (_protocol, contentType, body) => {
    const before = { spans: sink.spans, get: sink.spansByName.get('GET') ?? 0 };
    const res = await fetch(`${endpoint}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: body()!,
    });
    expect(res.status).toBe(200);
    expect(sink.spans - before.spans).toBe(3);
    expect((sink.spansByName.get('GET') ?? 0) - before.get).toBe(2);
    expect(sink.spansByName.get('gpu job.requested')).toBeGreaterThan(0);
  });
});
