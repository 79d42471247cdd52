import { Injectable } from '@nestjs/common';
import type { BlobRef } from '../../../streams/job-event.types';
import { QueuePositionService } from '../commands/queue-position.service';
import type { JobError, JobStatus, JobView } from '../projection/job-view';
import { JobViewRepository } from '../projection/job-view.repository';

export interface GenerationResource {
  id: string;
  workflow?: string;
  status: JobStatus;
  position?: number;
  etaSeconds?: number | null;
  progress?: { value: number; max: number; percent: number; stage?: string };
  error?: JobError;
  result?: { index: number; url: string; type: string; size: number; sha256: string }[];
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
  cancelRequested?: boolean;
}

export const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Read side of the API: the projection, or the accepted-job record until the projection has caught up. */
@Injectable()
export class GenerationQueryService {
  constructor(
    private readonly views: JobViewRepository,
    private readonly queue: QueuePositionService,
  ) {}

  async find(jobId: string): Promise<JobView | undefined> {
    if (!JOB_ID_PATTERN.test(jobId)) return undefined;
    const view = await this.views.get(jobId);
    if (view) return view;
    const record = await this.views.record(jobId);
    if (!record.id) return undefined;
    return {
      id: record.id,
      workflow: record.workflow,
      userId: record.userId,
      status: 'queued',
      attempt: 0,
      ticket: Number(record.ticket),
      createdAt: record.createdAt,
    };
  }

  async resource(view: JobView): Promise<GenerationResource> {
    const out: GenerationResource = {
      id: view.id,
      workflow: view.workflow,
      status: view.status,
      createdAt: view.createdAt,
      startedAt: view.startedAt,
      finishedAt: view.finishedAt,
    };
    if (view.cancelRequested) out.cancelRequested = true;
    if (view.status === 'queued') {
      // Taken by a worker and waiting in ComfyUI's own queue (pipeline depth): next in line, position 0.
      const { position, etaSeconds } = await this.queue.positionOf(view.id, view.costKey);
      Object.assign(out, { position: position ?? 0, etaSeconds });
    }
    if (view.status === 'running') out.progress = await this.lastProgress(view.id);
    if (view.status === 'succeeded') out.progress = { value: 1, max: 1, percent: 100 };
    if (view.error && view.status !== 'succeeded') out.error = view.error;
    if (view.result) out.result = view.result.map((ref, index) => resultLink(view.id, ref, index));
    return out;
  }

  private async lastProgress(jobId: string): Promise<GenerationResource['progress']> {
    const tick = await this.views.lastProgress(jobId);
    if (!tick) return { value: 0, max: 1, percent: 0 };
    const { value, max, stage } = tick.payload;
    const percent = max > 0 ? Math.min(100, Math.round((value / max) * 100)) : 0;
    return { value, max, percent, ...(stage ? { stage } : {}) };
  }
}

function resultLink(jobId: string, ref: BlobRef, index: number) {
  return {
    index,
    url: `/v1/generations/${jobId}/result?index=${index}`,
    type: ref.type,
    size: ref.size,
    sha256: ref.hash,
  };
}
