import type { ObservedEnvelope } from './observability.hooks';

/** Failure codes that are the request's fault (the job's 4xx): not reported as errors. */
export const CLIENT_FAULT_CODES: ReadonlySet<string> = new Set([
  'comfyui_validation',
  'unknown_workflow',
  'bad_inputs',
  'input_expired',
]);

export interface JobFailureReport {
  kind: 'job.failed' | 'job.dead-lettered';
  code: string;
  message: string;
}

/**
 * Which events are worth an error report, one per failed job: a final `job.failed` that is the fleet's or our fault,
 * and every dead letter. A retriable failure with retries exhausted is followed by its `job.dead-lettered`, which
 * is the one reported (so a job is not reported twice); retries in progress are not reported at all.
 */
export function jobFailureOf(envelope: ObservedEnvelope): JobFailureReport | undefined {
  const p = envelope.payload as Record<string, unknown> | null;
  if (!p) return undefined;
  if (envelope.type === 'job.failed') {
    if (p.willRetry !== false || p.retriable !== false) return undefined;
    const code = typeof p.code === 'string' ? p.code : 'unknown';
    if (CLIENT_FAULT_CODES.has(code)) return undefined;
    return { kind: 'job.failed', code, message: typeof p.message === 'string' ? p.message : code };
  }
  if (envelope.type === 'job.dead-lettered') {
    const code = `dead_letter:${typeof p.originalType === 'string' ? p.originalType : 'entry'}`;
    return { kind: 'job.dead-lettered', code, message: typeof p.reason === 'string' ? p.reason : code };
  }
  return undefined;
}
