import { Inject } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { BLOB_STORE, blobHolders, type BlobStore } from '../../../blobs/blob-store';
import type { BlobRef } from '../../../streams/job-event.types';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import type { JobEnvelope } from '../../../streams/job-event.types';
import { OnStreamEvent, StreamController } from '../../../streams/on-stream-event.decorator';
import { DeadLetterError, HandOffError, RetryLaterError } from '../../../streams/stream-errors';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamPublisher } from '../../../streams/stream.publisher';
import { StreamContext } from '../../../streams/stream.context';
import { WorkflowCatalog } from '../../../workflows';
import { JobLedger } from '../../generation';
import { CancelRegistryService } from './cancel-registry.service';
import { CapablePeerFinder } from './capable-peer.finder';
import { JobPlacementStore, parsePlacement } from './job-placement.store';
import { ROOT_LOGGER } from '../../../common/root-logger';
import type { Logger } from '../../../common/logger';
import { GENERATION_EXECUTOR, type GenerationExecutor } from './generation-executor';
import { toExecutionError } from './comfyui-error.mapper';
import { ProgressThrottle } from './progress-throttle';

/**
 * The `gpu` group's handler of `job.requested`: takes the job off the queue (or finds it cancelled), runs it
 * on the executor, and appends accepted/started/progress/completed — or failed, with a verdict: retriable
 * failures leave the entry pending for another attempt until MAX_DELIVERIES, others end the job.
 */
@StreamController()
export class JobRunnerController {
  constructor(
    @Inject(GENERATION_EXECUTOR) private readonly executor: GenerationExecutor,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly ledger: JobLedger,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
    private readonly catalog: WorkflowCatalog,
    private readonly cancels: CancelRegistryService,
    private readonly peers: CapablePeerFinder,
    private readonly placements: JobPlacementStore,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
  ) {}

  /**
   * A job none of this process's instances can run goes, untouched (still queued), to a peer that has an instance
   * for it — preferably the one driving the instance an earlier attempt placed its prompt on — unless no live peer
   * has, or its deliveries are spent (a hand-off is a delivery): then it runs here and fails `no_capable_instance`,
   * naming what is missing.
   */
  private async handOffWhenOthersMust(event: JobEnvelope<'job.requested'>, ctx: StreamContext): Promise<void> {
    const template = this.catalog.get(event.payload.workflow);
    if (!template || ctx.deliveries >= this.config.maxDeliveries) return;
    const lacks = this.executor.cannotRun(template, event.payload.inputs);
    if (lacks === null) return;
    const peer = await this.placements
      .get(event.jobId)
      .then((placed) => this.peers.find(template, event.payload.inputs, ctx.entry.consumer, placed?.instanceId))
      .catch(() => null);
    if (peer) throw new HandOffError(peer, `no instance of this process can run it (${lacks})`);
  }

  @OnStreamEvent('job.requested', 'gpu')
  async onRequested(@Payload() event: JobEnvelope<'job.requested'>, @Ctx() ctx: StreamContext): Promise<void> {
    const { jobId, correlationId } = event;
    const meta = { jobId, correlationId, actor: ctx.entry.consumer };
    const attempt = ctx.deliveries;
    await this.handOffWhenOthersMust(event, ctx);
    // Listen for a cancel before looking at the flag: the API sets the flag before it sends the event, so a cancel
    // is either seen here or heard by the registration — never missed in between.
    const registration = this.cancels.register(jobId);
    const entry = `${ctx.entry.stream.slice(this.keys.forJob(jobId).prefix.length)}|${ctx.entry.id}`;
    const claim = await this.ledger.claimForRun(jobId, entry);
    if (claim.finished) {
      // Redelivered after the job already ended (e.g. a worker died between completing and acking): done.
      registration.release();
      return;
    }
    if (claim.cancelledBy !== null) {
      registration.release();
      await this.cancelledOnce(meta, claim.cancelledBy, true);
      return;
    }
    if (claim.runningFrom !== null) {
      // Another request entry of this job runs it (a replay or duplicate append): this one stands aside.
      registration.release();
      this.log.warn(
        { jobId, correlationId, entry, runningFrom: claim.runningFrom },
        'duplicate request entry; the job already runs',
      );
      return;
    }
    const template = this.catalog.get(event.payload.workflow);
    if (!template) {
      registration.release();
      await this.ledger.releaseRun(jobId, entry);
      await this.fail(meta, 'unknown_workflow', `Workflow "${event.payload.workflow}" is not installed here.`, false);
      return;
    }
    // Deadlines are the executor's (they start when the prompt is placed, not while waiting for an instance).
    const signal = AbortSignal.any([registration.controller.signal, ctx.signal]);
    const startedAt = Date.now();
    const throttle = new ProgressThrottle(250);
    let placement = { instance: this.executor.name, promptId: jobId };
    let runEnded = false;
    try {
      const result = await this.executor.execute(
        { jobId, attempt, template, inputs: event.payload.inputs, placement: parsePlacement(claim.placement) },
        {
          signal,
          cancelSignal: registration.controller.signal,
          trace: ctx.trace,
          onAccepted: async (p) => {
            placement = p;
            await this.ledger.append('job.accepted', meta, { worker: meta.actor, attempt, ...p });
          },
          onStarted: async () => {
            await this.ledger.append('job.started', meta, { worker: meta.actor, attempt, ...placement });
          },
          onProgress: (progress) => {
            if (!throttle.shouldEmit(progress.value >= progress.max)) return;
            void this.publisher.publish('job.progress', meta, progress).catch(() => undefined);
          },
        },
      );
      // Held for API clients until BLOB_TTL_SECONDS; the bot releases a Telegram job's result once delivered.
      const hold = { holder: blobHolders.result(jobId), ttlSeconds: this.config.blobs.ttlSeconds };
      const stored = await Promise.allSettled(result.outputs.map((o) => this.blobs.put(o.bytes, o.type, hold)));
      const failed = stored.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) {
        // Not all of the result could be kept: none of it counts; the retry stores it again (re-attaching to the
        // finished prompt rather than running it twice).
        for (const s of stored) if (s.status === 'fulfilled') await this.blobs.release(s.value.hash, hold.holder);
        throw failed.reason;
      }
      const outputs = stored.map((s) => (s as PromiseFulfilledResult<BlobRef>).value);
      const queuedMs = Math.max(0, startedAt - Date.parse(event.occurredAt));
      await this.ledger.append(
        'job.completed',
        meta,
        {
          outputs,
          instance: result.instance,
          promptId: result.promptId,
          timings: { queuedMs, runMs: Date.now() - startedAt },
        },
        // The run ends with the job: its lease and placement go in the same step.
        { endsRunOf: entry },
      );
      runEnded = true;
    } catch (err) {
      if (registration.controller.signal.aborted) {
        await this.cancelledOnce(meta, 'request', false);
        return;
      }
      if (ctx.signal.aborted) throw err; // shutdown or lost ownership: the entry stays pending for another worker
      await this.onFailure(meta, err, attempt);
    } finally {
      registration.release();
      // Kept when the entry stays pending (retry, shutdown): its redelivery takes the lease over.
      if (!ctx.signal.aborted && !runEnded) await this.ledger.releaseRun(jobId, entry).catch(() => undefined);
    }
  }

  /** The API may have announced the cancel already (it won the queue race): one `job.cancelled` per job. */
  private async cancelledOnce(
    meta: { jobId: string; correlationId: string; actor: string },
    by: string,
    queued: boolean,
  ) {
    await this.ledger.publishCancelled(meta, { by, whileQueued: queued });
  }

  private async onFailure(
    meta: { jobId: string; correlationId: string; actor: string },
    err: unknown,
    attempt: number,
  ) {
    const execution = toExecutionError(err);
    const willRetry = execution.retriable && attempt < this.config.maxDeliveries;
    await this.fail(meta, execution.code, execution.message, execution.retriable, willRetry, attempt);
    // Retried here, in this job's slot, after a short backoff: jobs submitted later do not pass it (waiting
    // for CLAIM_IDLE_MS would let them), and an instance outage is waited out in the pool, not by failing again.
    if (willRetry) throw new RetryLaterError(execution.message, { cause: err, inPlaceAfterMs: retryDelayMs(attempt) });
    // Retries exhausted on a fault of the fleet, not of the request: park it in the DLQ so an operator can
    // re-drive it once the fleet is fixed. A request's own fault (validation) is simply failed.
    if (execution.retriable) throw new DeadLetterError(`${execution.code}: ${execution.message}`, { cause: err });
  }

  private async fail(
    meta: { jobId: string; correlationId: string; actor: string },
    code: string,
    message: string,
    retriable: boolean,
    willRetry = false,
    attempt?: number,
  ) {
    await this.ledger.append('job.failed', meta, { code, message, retriable, willRetry, attempt });
  }
}

/**
 * The first retry goes at once (a slot it waited for would otherwise go to a job read later); then 250 ms,
 * 500 ms, … capped at 5 s, so a call that keeps failing does not spin. An unusable fleet is waited out in the
 * pool, not here.
 */
function retryDelayMs(attempt: number): number {
  return attempt <= 1 ? 0 : Math.min(250 * 2 ** (attempt - 2), 5_000);
}
