import { Inject } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { BLOB_STORE, blobHolders, type BlobStore } from '../../../blobs/blob-store';
import { KeyedSerializer } from '../../../common/keyed-serializer';
import { onlyAcknowledges } from '../../../common/observability/observability.hooks';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { JOB_EVENT_TYPES, type AnyJobEnvelope, type JobEventType } from '../../../streams/job-event.types';
import { OnStreamEvent, StreamController } from '../../../streams/on-stream-event.decorator';
import { StreamContext } from '../../../streams/stream.context';
import { JobLedger, PROJECTED_FIELD } from '../ledger/job-ledger';
import { drawMsOf } from '../eta/draw-time';
import { runCostKeyOf } from '../eta/run-cost';
import { inputsReleasable, isTerminal, type JobView } from './job-view';
import { JobViewRepository } from './job-view.repository';
import { RunStatsRepository } from './run-stats.repository';

const PROJECTED_EVENT_TYPES = JOB_EVENT_TYPES.filter(
  (type): type is Exclude<JobEventType, 'job.progress'> => type !== 'job.progress',
);

/**
 * The `projector` group: folds every job event into `jobs:view:<id>`, records the job's timeline, and releases
 * what a finished job held (the user's active slot, its queue ticket, its input images). The cancel flag is left to expire: a
 * worker that meets the job's request entry later must still see it.
 */
@StreamController()
export class ProjectorController {
  private readonly serializer = new KeyedSerializer();
  private readonly finishedTtlSeconds: number;

  constructor(
    private readonly views: JobViewRepository,
    private readonly runStats: RunStatsRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly ledger: JobLedger,
  ) {
    this.finishedTtlSeconds = Math.ceil(config.retentionMs / 1000);
  }

  /** Every event type of the streams the group reads (job.progress is not projected: its stream has no group). */
  @OnStreamEvent(PROJECTED_EVENT_TYPES, 'projector')
  onEvent(@Payload() e: AnyJobEnvelope, @Ctx() ctx: StreamContext) {
    return this.project(e, ctx);
  }

  private project(event: AnyJobEnvelope, ctx: StreamContext): Promise<void> {
    // Applied to the view by the ledger as it was appended (same reducer, same side effects): nothing left to do.
    if (isProjected(ctx.entry.fields)) return Promise.resolve();
    // One job's events are applied in arrival order within this process; CAS covers other replicas.
    return this.serializer.run(event.jobId, async () => {
      const { before, after } = await this.views.apply(event, (v) =>
        isTerminal(v.status) ? this.finishedTtlSeconds : 0,
      );
      await this.sideEffects(event, ctx, before, after);
    });
  }

  private async sideEffects(event: AnyJobEnvelope, ctx: StreamContext, before: JobView | undefined, after: JobView) {
    const justFinished = isTerminal(after.status) && (!before || !isTerminal(before.status));
    const leftQueue = event.type === 'job.accepted' || event.type === 'job.started' || justFinished;
    // Timeline, queue and in-flight moves, and a finished job's slots: one MULTI.
    await this.ledger.recordProjected(event, ctx.entry, after);
    // A worker that did not claim through the ledger (another release, during a rolling upgrade) left the queue
    // here: the fair queue's next job is dispatched into its place (a no-op when the streams are full).
    if (leftQueue) await this.ledger.dispatchQueued();
    // Idempotent like the rest: every event of a finished job releases again (edit jobs only; a cheap script).
    if (after.inputBlobs && inputsReleasable(after)) {
      for (const hash of after.inputBlobs) await this.blobs.release(hash, blobHolders.input(event.jobId));
    }
    if (justFinished && event.type === 'job.completed') {
      await this.runStats.recordRun(
        event.jobId,
        drawMsOf(before, event),
        after.costKey ?? runCostKeyOf(after.workflow ?? '', {}),
      );
    }
  }
}

function isProjected(fields: readonly string[]): boolean {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === PROJECTED_FIELD) return fields[i + 1] === '1';
  return false;
}

// Tracing: no projector span for an entry it skips (its event was applied in the appending process's span).
onlyAcknowledges('projector', isProjected);
