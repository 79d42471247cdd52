import { imageInputs } from '../../../blobs/job-input-blobs';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import { isTerminal, type JobView } from './job-view';
import { runCostKeyOf } from '../eta/run-cost';

/**
 * Folds one event into a job's view. Order-tolerant and idempotent, because the projector reads two streams
 * (requests and events) that interleave arbitrarily under backlog, may run in several replicas, and sees
 * redeliveries: a terminal status is never left, an event of an older attempt never moves the status, and
 * `job.requested` only fills what is missing.
 */
export function reduceJobView(current: JobView | undefined, event: AnyJobEnvelope): JobView {
  const view: JobView = current ? { ...current } : { id: event.jobId, status: 'queued', attempt: 0 };
  view.correlationId ??= event.correlationId;
  switch (event.type) {
    case 'job.requested': {
      const p = event.payload;
      view.workflow ??= p.workflow;
      view.userId ??= p.userId;
      view.source ??= p.source;
      view.ticket ??= event.ticket;
      view.createdAt ??= event.occurredAt;
      view.costKey ??= runCostKeyOf(p.workflow, p.inputs);
      if (p.telegram) view.telegram ??= p.telegram;
      const images = imageInputs(p.inputs).map(([, ref]) => ref.hash);
      if (images.length > 0) view.inputBlobs ??= [...new Set(images)];
      break;
    }
    case 'job.accepted': {
      const p = event.payload;
      if (p.attempt < view.attempt) break;
      view.attempt = p.attempt;
      view.worker = p.worker;
      view.instance = p.instance;
      view.promptId = p.promptId;
      view.acceptedAt = event.occurredAt;
      break;
    }
    case 'job.started': {
      const p = event.payload;
      const attempt = p.attempt ?? view.attempt;
      if (attempt < view.attempt || isTerminal(view.status)) break;
      view.attempt = attempt;
      view.status = 'running';
      view.instance = p.instance;
      view.promptId = p.promptId;
      // The first start counts: a worker that takes the job over re-announces it (re-attaching to the prompt
      // that has been running all along), and a retry continues the same job.
      view.startedAt ??= event.occurredAt;
      break;
    }
    case 'job.completed': {
      if (isTerminal(view.status)) break;
      const p = event.payload;
      view.status = 'succeeded';
      view.result = p.outputs;
      view.instance = p.instance;
      view.runMs = p.timings.runMs;
      view.queuedMs = p.timings.queuedMs;
      view.finishedAt = event.occurredAt;
      delete view.error;
      break;
    }
    case 'job.failed': {
      const p = event.payload;
      if (isTerminal(view.status)) break;
      const attempt = p.attempt ?? view.attempt;
      if (attempt < view.attempt) break;
      view.error = { code: p.code, message: p.message, retriable: p.retriable };
      if (p.willRetry) {
        view.status = 'queued';
      } else {
        view.status = 'failed';
        view.finishedAt = event.occurredAt;
      }
      break;
    }
    case 'job.cancel-requested':
      view.cancelRequested = true;
      break;
    case 'job.cancelled':
      if (isTerminal(view.status)) break;
      view.status = 'cancelled';
      view.finishedAt = event.occurredAt;
      break;
    case 'job.delivered':
      view.deliveredTo = { chatId: event.payload.chatId, messageId: event.payload.messageId };
      break;
    case 'job.dead-lettered':
      if (!event.payload.endsJob || isTerminal(view.status)) break;
      view.status = 'failed';
      view.error = { code: 'dead_lettered', message: event.payload.reason, retriable: false };
      view.finishedAt = event.occurredAt;
      break;
    case 'job.progress':
      break;
    default: {
      // A new event type (job-event.schemas.ts) fails to compile here until the view says what it does.
      const unhandled: never = event;
      return unhandled;
    }
  }
  return view;
}
