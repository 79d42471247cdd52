import type { BlobRef, TelegramOrigin } from '../../../streams/job-event.types';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

export interface JobError {
  code: string;
  message: string;
  retriable?: boolean;
}

/** The read model of one job (`jobs:view:<id>`), built only from events. */
export interface JobView {
  id: string;
  workflow?: string;
  userId?: string;
  source?: string;
  /** The API key's active set the job counts in (API_KEY_MAX_ACTIVE), set at submit: the job leaves it when it ends. */
  keyActiveSet?: string;
  status: JobStatus;
  ticket?: number;
  attempt: number;
  createdAt?: string;
  acceptedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  worker?: string;
  instance?: string;
  promptId?: string;
  error?: JobError;
  result?: BlobRef[];
  /** Content hashes of the job's image inputs: released from the blob store when the job ends for good. */
  inputBlobs?: string[];
  runMs?: number;
  queuedMs?: number;
  /** The stream entry id of its `job.requested` (set by the submit script and by a replay). */
  requestEntryId?: string;
  /** The class of like jobs its run time is predicted from and learned for (eta/run-cost.ts). */
  costKey?: string;
  cancelRequested?: boolean;
  telegram?: TelegramOrigin;
  deliveredTo?: { chatId: number; messageId: number };
  correlationId?: string;
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/**
 * A job's inputs are no longer needed once it ended for good. A job that failed on a fault of the fleet
 * (retriable, or dead-lettered) may be re-driven by an operator: its inputs stay until BLOB_TTL_SECONDS.
 */
export function inputsReleasable(view: JobView): boolean {
  if (view.status === 'succeeded' || view.status === 'cancelled') return true;
  return view.status === 'failed' && view.error?.retriable !== true && view.error?.code !== 'dead_lettered';
}
