import { Injectable } from '@nestjs/common';
import { isTerminal, type JobStatus, JobViewRepository, QueuePositionService } from '../../generation';

/** What a live status message should say right now. */
export type LiveJobState =
  | { kind: 'queued'; position: number; etaSeconds: number | null }
  | { kind: 'starting'; etaSeconds: number | null }
  | { kind: 'running'; percent: number | null; stage: string | null }
  | { kind: 'retrying' }
  | { kind: 'cancelling' }
  | { kind: 'final'; status: JobStatus };

/**
 * Reads a job's current state from the read model (status), the queue (position, ETA) and the last progress
 * tick. Sampling the latest state — instead of reacting to each tick — is what lets the bot skip intermediate
 * progress rather than queue edits.
 */
@Injectable()
export class JobStateReader {
  constructor(
    private readonly views: JobViewRepository,
    private readonly queue: QueuePositionService,
  ) {}

  async read(jobId: string, cancelRequested: boolean): Promise<LiveJobState> {
    const view = await this.views.get(jobId);
    if (view && isTerminal(view.status)) return { kind: 'final', status: view.status };
    if (cancelRequested || view?.cancelRequested) return { kind: 'cancelling' };
    if (view?.status === 'running') return this.progress(jobId);
    // Back in the queue after a failed attempt that will be retried.
    if (view?.status === 'queued' && view.error) return { kind: 'retrying' };
    const { position, etaSeconds } = await this.queue.positionOf(jobId, view?.costKey);
    return position === undefined ? { kind: 'starting', etaSeconds } : { kind: 'queued', position, etaSeconds };
  }

  private async progress(jobId: string): Promise<LiveJobState> {
    const tick = await this.views.lastProgress(jobId);
    if (!tick) return { kind: 'running', percent: null, stage: null };
    const { value, max, stage } = tick.payload;
    // Whole 5% steps: finer steps would only spend the edit budget on invisible changes.
    const percent = max > 0 ? Math.min(100, Math.floor((value / max) * 20) * 5) : null;
    return { kind: 'running', percent, stage: stage ?? null };
  }
}
