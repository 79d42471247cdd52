/**
 * How much of the OTLP encoding a traced gpu process pays is V8 warming up: encodes six batches of ~515 spans shaped
 * like a zero-time job's in the gpu process (a consumer span and its two ComfyUI calls' client spans) in this fresh process and prints the
 * milliseconds each batch took, first to last. Run it a few times (each run is a new process):
 *
 *   npx ts-node --transpile-only bench/tools/otlp-encode-warmup.ts [protobuf|json]
 *
 * The bench's gpu processes export only two or three such batches in their life, so their first, cold ones are the
 * ones inside measure 10's timed window.
 */
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

const JOBS_PER_BATCH = 171; // × 3 spans
const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('warmup');

function batch(first: number) {
  exporter.reset();
  for (let i = first; i < first + JOBS_PER_BATCH; i++) {
    const jobId = `0190b3c4-${String(i).padStart(4, '0')}-7000-8000-000000000000`;
    const job = tracer.startSpan('gpu job.requested', {
      kind: SpanKind.CONSUMER,
      attributes: {
        'comfy_relay.job_id': jobId,
        'comfy_relay.event_type': 'job.requested',
        'comfy_relay.deliveries': 1,
        'messaging.system': 'redis',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'cr:jobs:requests',
        'messaging.consumer.group.name': 'gpu',
        'messaging.message.id': `1765150000000-${i}`,
        'comfy_relay.workflow': 'echo-invert',
      },
    });
    for (const path of ['/prompt', `/view?filename=ComfyUI_temp_${i}.png`]) {
      const call = tracer.startSpan(
        path === '/prompt' ? 'POST' : 'GET',
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': path === '/prompt' ? 'POST' : 'GET',
            'url.full': `http://127.0.0.1:41234${path}`,
            'server.address': '127.0.0.1',
            'server.port': 41234,
            'comfy_relay.job_id': jobId,
          },
        },
        trace.setSpan(ROOT_CONTEXT, job),
      );
      call.setAttribute('http.response.status_code', 200);
      call.end();
    }
    job.end();
  }
  return exporter.getFinishedSpans();
}

const serializer = process.argv[2] === 'json' ? JsonTraceSerializer : ProtobufTraceSerializer;
const took: string[] = [];
for (let b = 0; b < 6; b++) {
  const spans = batch(b * JOBS_PER_BATCH);
  const t0 = performance.now();
  serializer.serializeRequest(spans);
  took.push((performance.now() - t0).toFixed(1));
}
process.stdout.write(
  `${process.argv[2] ?? 'protobuf'}: ms per batch of ${JOBS_PER_BATCH * 3} spans: ${took.join(' ')}\n`,
);
