/** W3C trace context `traceparent`: version 00, trace id, parent span id, flags (https://www.w3.org/TR/trace-context/). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const INVALID_TRACE_ID = '0'.repeat(32);

/** The trace id a `traceparent` names, or undefined when the value is not a valid one (events are not trusted). */
export function traceIdOf(traceparent: unknown): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match || match[1] === INVALID_TRACE_ID || match[2] === '0'.repeat(16)) return undefined;
  return match[1];
}

/** The trace of a job: the one its request started (later events of the job continue it), else the first found. */
export function jobTraceId(events: readonly { type: string; traceparent?: unknown }[]): string | undefined {
  const request = events.find((e) => e.type === 'job.requested' && traceIdOf(e.traceparent) !== undefined);
  return traceIdOf((request ?? events.find((e) => traceIdOf(e.traceparent) !== undefined))?.traceparent);
}
