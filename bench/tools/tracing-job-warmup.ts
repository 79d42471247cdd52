/**
 * How long the tracing code of a gpu process stays cold: runs the tracing work of zero-time jobs as a gpu process
 * does it (a consumer span continuing the envelope's trace, the job's three events' traceparents, the two ComfyUI
 * calls' CLIENT spans) through the real OtelJobTracing, batch processor and OTLP protobuf exporter, to a sink on
 * 127.0.0.1 in this process, and prints the CPU per job of each round, first to last. Each run is a new process:
 *
 *   npx ts-node --transpile-only bench/tools/tracing-job-warmup.ts [rounds=10] [jobs per round=500]
 *
 * The bench's gpu processes handle 520 jobs in their life (measure 10), so they run this code cold.
 */
import { startTracing } from '../../src/common/observability/otel-tracing';
import { OtlpSink } from '../lib/otlp-sink';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const ORIGIN = 'http://127.0.0.1:8188';

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 10);
  const perRound = Number(process.argv[3] ?? 500);
  const sink = new OtlpSink();
  const started = await startTracing({
    endpoint: await sink.start(),
    protocol: 'http/protobuf',
    serviceName: 'comfy-relay-gpu',
    serviceVersion: 'bench',
    role: 'gpu',
    instance: 'warmup',
    scrub: (text) => text,
  });
  const tracing = started.tracing;
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < perRound; i++, n++) {
      const jobId = `0190b3c4-${String(n).padStart(4, '0')}-7000-8000-000000000000`;
      const envelope = {
        type: 'job.requested',
        jobId,
        correlationId: jobId,
        payload: { workflow: 'echo-invert' },
        traceparent: TRACEPARENT,
      };
      const place = { group: 'gpu', consumer: 'gpu-1', stream: 'cr:jobs:requests', entryId: `${n}-0`, deliveries: 1 };
      await tracing.inHandlerSpan(envelope, place, async (trace) => {
        for (const type of ['job.accepted', 'job.started', 'job.completed']) {
          tracing.traceparentFor({ ...envelope, type });
        }
        for (const [method, path] of [
          ['POST', '/prompt'],
          ['GET', `/view?filename=${jobId}.png&subfolder=&type=temp`],
        ] as const) {
          const call = tracing.clientCall(trace, method, ORIGIN, path);
          call.response(200);
          call.end();
        }
      });
      // A job spans many turns of the event loop: the exports (HTTP to the sink) run between jobs, as they would.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const used = process.cpuUsage(before);
    process.stdout.write(
      `jobs ${n - perRound + 1}–${n}: ${((used.user + used.system) / perRound).toFixed(0)} µs CPU per job ` +
        `(spans received so far: ${sink.spans})\n`,
    );
  }
  await started.shutdown();
  await sink.stop();
}

void main();
