/**
 * The export thread of the tracing (see WorkerSpanProcessor): batches the finished spans the main thread sends, scrubs
 * them and encodes and posts them over OTLP/HTTP, so none of that runs on the event loop that handles jobs. The batch
 * processor here is the SDK's, so OTEL_BSP_* apply as before; the exporter reads OTEL_EXPORTER_OTLP_* itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createLogScrubber } from '../log-redaction';
import { ScrubbingSpanExporter } from './scrubbing-span.exporter';
import type { ExportWorkerData, FromExportWorker, ToExportWorker, WireSpan } from './span-export.wire';

async function startProcessor(data: ExportWorkerData): Promise<BatchSpanProcessor> {
  const exporter: SpanExporter =
    data.protocol === 'http/json'
      ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url: data.url })
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url: data.url });
  return new BatchSpanProcessor(new ScrubbingSpanExporter(exporter, createLogScrubber(data.secrets)));
}

const data = workerData as ExportWorkerData;
const resource = resourceFromAttributes(data.resource);
const ready = startProcessor(data);
const reply = (done: number): void => parentPort!.postMessage({ done } satisfies FromExportWorker);
// Listening at once: messages that come while the exporter loads wait on `ready`, in order.
parentPort!.on('message', (message: ToExportWorker) => {
  void ready.then(async (processor) => {
    if ('spans' in message) {
      for (const wire of message.spans) processor.onEnd(readableOf(wire, resource));
    } else {
      await (message.call === 'flush' ? processor.forceFlush() : processor.shutdown()).catch(() => undefined);
      reply(message.id);
    }
  });
});

/** The span as the SDK's exporters read it. */
function readableOf(wire: WireSpan, resource: ReadableSpan['resource']): ReadableSpan {
  const spanContext = {
    traceId: wire.traceId,
    spanId: wire.spanId,
    traceFlags: wire.traceFlags,
    ...(wire.traceState !== undefined ? { traceState: new TraceState(wire.traceState) } : {}),
  };
  const [seconds, nanos] = [wire.endTime[0] - wire.startTime[0], wire.endTime[1] - wire.startTime[1]];
  return {
    name: wire.name,
    kind: wire.kind,
    spanContext: () => spanContext,
    ...(wire.parent ? { parentSpanContext: { traceId: wire.traceId, ...wire.parent } } : {}),
    startTime: wire.startTime,
    endTime: wire.endTime,
    duration: nanos < 0 ? [seconds - 1, nanos + 1e9] : [seconds, nanos],
    status: wire.status,
    attributes: wire.attributes,
    links: wire.links.map(({ attributes, ...context }) => ({ context, ...(attributes ? { attributes } : {}) })),
    events: wire.events,
    ended: true,
    resource,
    instrumentationScope: wire.scope,
    droppedAttributesCount: wire.dropped[0],
    droppedEventsCount: wire.dropped[1],
    droppedLinksCount: wire.dropped[2],
  };
}
