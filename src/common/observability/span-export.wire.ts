import type { Attributes, HrTime, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/**
 * A finished span as it crosses to the export thread (./span-export.worker): plain data only, since a message is a
 * structured clone (no functions, no prototypes: the span context is fields, the trace state its header form).
 */
export interface WireSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: string;
  parent?: { spanId: string; traceFlags: number; isRemote: boolean };
  startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  links: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean; attributes?: Attributes }[];
  events: { name: string; time: HrTime; attributes?: Attributes; droppedAttributesCount?: number }[];
  dropped: [attributes: number, events: number, links: number];
  scope: { name: string; version?: string; schemaUrl?: string };
}

/** What the export thread starts with. */
export interface ExportWorkerData {
  protocol: 'http/protobuf' | 'http/json';
  url: string;
  /** The resource's attributes, known in full at start (see startTracing). */
  resource: Attributes;
  /** Secret values for the log scrubber, which runs on the export thread (a function does not cross threads). */
  secrets: readonly (string | undefined)[];
}

export type ToExportWorker = { spans: WireSpan[] } | { call: 'flush' | 'shutdown'; id: number };
export interface FromExportWorker {
  done: number;
}

export function wireOf(span: ReadableSpan): WireSpan {
  const sc = span.spanContext();
  const parent = span.parentSpanContext;
  const wire: WireSpan = {
    name: span.name,
    kind: span.kind,
    traceId: sc.traceId,
    spanId: sc.spanId,
    traceFlags: sc.traceFlags,
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    links: span.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      traceFlags: l.context.traceFlags,
      ...(l.context.isRemote !== undefined ? { isRemote: l.context.isRemote } : {}),
      ...(l.attributes ? { attributes: l.attributes } : {}),
    })),
    events: span.events,
    dropped: [span.droppedAttributesCount, span.droppedEventsCount, span.droppedLinksCount],
    scope: span.instrumentationScope,
  };
  if (sc.traceState) wire.traceState = sc.traceState.serialize();
  if (parent)
    wire.parent = { spanId: parent.spanId, traceFlags: parent.traceFlags, isRemote: parent.isRemote === true };
  return wire;
}
