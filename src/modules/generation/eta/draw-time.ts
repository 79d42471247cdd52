import type { JobEnvelope } from '../../../streams/job-event.types';
import type { JobView } from '../projection/job-view';

/**
 * How long a completed job drew: from `job.started` (the instance began executing it) to `job.completed`. A job
 * with no recorded start (re-attached after a crash) falls back to the worker's own run time.
 */
export function drawMsOf(before: JobView | undefined, completed: JobEnvelope<'job.completed'>): number {
  const started = before?.startedAt ? Date.parse(before.startedAt) : NaN;
  const ended = Date.parse(completed.occurredAt);
  if (Number.isFinite(started) && Number.isFinite(ended) && ended >= started) return ended - started;
  return Math.max(0, completed.payload.timings.runMs);
}
