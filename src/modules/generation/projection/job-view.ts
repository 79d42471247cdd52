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
  runMs?: number;
  queuedMs?: number;
  cancelRequested?: boolean;
  telegram?: TelegramOrigin;
  deliveredTo?: { chatId: number; messageId: number };
  correlationId?: string;
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}
