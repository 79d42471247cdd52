import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { BlobStoreFullError, BlobStoreUnavailableError } from '../../../blobs/blob-errors';
import { releaseJobInputs } from '../../../blobs/job-input-blobs';
import { BLOB_STORE, blobHolders, type BlobHold, type BlobStore } from '../../../blobs/blob-store';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { encodeEnvelope, makeEnvelope } from '../../../streams/envelope.codec';
import type { JobEventPayloads, JobInputValue, TelegramOrigin } from '../../../streams/job-event.types';
import { ReplicasUnconfirmedError } from '../../../redis/replica-ack';
import { RedisMemoryMonitor } from '../../../streams/redis-memory.monitor';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamPublisher } from '../../../streams/stream.publisher';
import {
  randomSeed,
  requirementsOf,
  validateInputs,
  WorkflowCatalog,
  type WorkflowInputValues,
} from '../../../workflows';
import {
  describeRefusal,
  judgeFleet,
  PoolCapabilityStore,
  refusedByFleet,
  type FleetVerdict,
} from '../../capabilities';
import { isTerminal } from '../projection/job-view';
import { JobLedger } from '../ledger/job-ledger';
import { JobViewRepository } from '../projection/job-view.repository';
import {
  ApiKeyLimitError,
  DrainingError,
  IdempotencyConflictError,
  InvalidRequestError,
  JobFinishedError,
  JobNotFoundError,
  NoCapableInstanceError,
  ReplicasUnconfirmedJobError,
  ServiceOverloadedError,
  UserLimitError,
} from './generation.errors';
import { DrainFlagStore } from './drain-flag.store';
import { apiKeyActiveKey, fairAccountOf, type SubmitOutcome, type SubmitScriptArgs } from './job-submit.script';
import { QueuePositionService, type QueuePosition } from './queue-position.service';
import { runCostKeyOf } from '../eta/run-cost';

export interface SubmitRequest {
  workflow: unknown;
  inputs: unknown;
  userId: string;
  source: JobEventPayloads['job.requested']['source'];
  /** Scope + key: the same key from another caller is another request. */
  idempotency?: { scope: string; key: string };
  telegram?: TelegramOrigin;
  priority?: boolean;
  correlationId?: string;
  /** The caller's API key fingerprint (never the key): the job counts against its API_KEY_MAX_ACTIVE. */
  apiKey?: string;
}

export interface SubmitResult {
  id: string;
  status: 'queued';
  duplicate: boolean;
  position: number;
  etaSeconds: number | null;
}

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const REDIS_FULL_RETRY_AFTER_SECONDS = 30;
const BLOB_FULL_RETRY_AFTER_SECONDS = 60;
const KEY_LIMIT_RETRY_AFTER_SECONDS = 10;
/** Replicas behind or a failover under way: Sentinel's failover takes seconds. */
const REPLICAS_RETRY_AFTER_SECONDS = 2;
const WORKFLOW_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Job commands: submit and cancel. Writes only events (plus the bookkeeping the submit script keeps). */
@Injectable()
export class GenerationService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
    private readonly catalog: WorkflowCatalog,
    private readonly views: JobViewRepository,
    private readonly queue: QueuePositionService,
    private readonly memory: RedisMemoryMonitor,
    private readonly ledger: JobLedger,
    private readonly capabilities: PoolCapabilityStore,
    private readonly drainFlag: DrainFlagStore,
  ) {}

  async submit(request: SubmitRequest): Promise<SubmitResult> {
    const values = this.validate(request.workflow, request.inputs);
    // The checks before a job is taken go out together: one round trip, not four.
    const workflow = request.workflow as string;
    const [draining, , active, fleet] = await Promise.all([
      this.drainFlag.isSet(),
      this.refuseWhenNearlyFull(),
      this.ledger.activeCount(request.userId),
      this.judgeFleet(workflow, values),
    ]);
    if (draining) throw new DrainingError();
    // Not sent to fail on an instance: refused now, naming what is missing where.
    if (fleet && refusedByFleet(fleet)) throw new NoCapableInstanceError(describeRefusal(fleet), fleet.checked);
    const fingerprint = fingerprintOf(workflow, request.inputs);
    // The account's shard holds its jobs, limits, idempotency keys and fair order (STREAM_SHARDS); the id names it.
    const account = fairAccountOf(request.userId, request.apiKey);
    const shard = this.keys.forAccount(account);
    const jobId = shard.mintJobId();
    if (active >= this.config.userMaxActive) await this.ledger.releaseEndedActiveJobs(request.userId);
    const inputs = await this.storeInputs(jobId, workflow, values);
    const envelope = makeEnvelope(
      'job.requested',
      { jobId, correlationId: request.correlationId ?? jobId, actor: request.userId },
      {
        workflow,
        inputs,
        userId: request.userId,
        source: request.source,
        ...(request.priority ? { priority: true } : {}),
        ...(request.telegram ? { telegram: request.telegram } : {}),
      },
    );
    // The ticket is drawn by the submit script and appended as the entry's own field.
    const envelopeJson = encodeEnvelope(envelope);
    const costKey = runCostKeyOf(workflow, values);
    // The 202's position and ETA are read in the script's round trip, right behind it (see readPosition).
    let early: Promise<QueuePosition> | undefined;
    const readEarly = () => {
      early = this.queue.positionOf(jobId, costKey, capableNow(fleet));
      early.catch(() => undefined); // awaited below only when the job was accepted
    };
    const outcome = await this.runSubmit(
      {
        jobId,
        idempotencyKey: request.idempotency
          ? shard.idempotency(request.idempotency.scope, hashKey(request.idempotency.key))
          : shard.idempotency('job', jobId),
        userId: request.userId,
        maxActive: this.config.userMaxActive,
        envelopeJson,
        stream: this.publisher.streamFor(envelope),
        workflow,
        createdAt: envelope.occurredAt,
        priority: request.priority === true,
        fingerprint,
        idempotencyTtlSeconds: request.idempotency ? IDEMPOTENCY_TTL_SECONDS : 0,
        recordTtlSeconds: Math.ceil(this.config.retentionMs / 1000),
        account,
        dispatchAhead: this.config.queueDispatchAhead,
        ...(request.apiKey !== undefined && this.config.apiKeyMaxActive !== null
          ? { keyActive: { key: apiKeyActiveKey(shard, request.apiKey), max: this.config.apiKeyMaxActive } }
          : {}),
      },
      readEarly,
    ).catch(async (err: unknown) => {
      // Unconfirmed is not refused: the job may have been kept, and it needs its images.
      if (!(err instanceof ReplicasUnconfirmedJobError)) await this.releaseInputs(jobId, inputs);
      throw err;
    });
    // A refused or duplicate request never becomes this job: its image holds go now, not at BLOB_TTL_SECONDS.
    if (outcome.kind !== 'accepted') await this.releaseInputs(jobId, inputs);
    if (outcome.kind === 'limit') throw new UserLimitError(outcome.active, this.config.userMaxActive);
    if (outcome.kind === 'key-limit') {
      throw new ApiKeyLimitError(outcome.active, this.config.apiKeyMaxActive ?? 0, KEY_LIMIT_RETRY_AFTER_SECONDS);
    }
    if (outcome.kind === 'duplicate') {
      if (outcome.fingerprint !== fingerprint) throw new IdempotencyConflictError(outcome.jobId);
      return { id: outcome.jobId, status: 'queued', duplicate: true, ...(await this.position(outcome.jobId)) };
    }
    return {
      id: jobId,
      status: 'queued',
      duplicate: false,
      ...(await this.acceptedPosition(jobId, early, costKey, capableNow(fleet))),
    };
  }

  /**
   * The position read in the submit script's round trip. One that found no rank is done again: the script may have
   * run after it (sent again by EVAL when a restarted Redis had lost it, or on the acknowledged-writes connection of
   * REDIS_MIN_REPLICAS_ACK, which the read does not follow). A job a worker took already answers position 0 either way.
   */
  private async acceptedPosition(
    jobId: string,
    early: Promise<QueuePosition> | undefined,
    costKey: string,
    capableInstances: number | undefined,
  ): Promise<{ position: number; etaSeconds: number | null }> {
    const read = early ? await early.catch(() => undefined) : undefined;
    if (read?.position !== undefined) return { position: read.position, etaSeconds: read.etaSeconds };
    return this.position(jobId, costKey, capableInstances);
  }

  /**
   * What the instances (published by the gpu processes) say about this job; null when none has published yet
   * (nothing to judge by: the job is taken, as before capabilities were read).
   */
  private async judgeFleet(workflow: string, values: WorkflowInputValues): Promise<FleetVerdict | null> {
    const template = this.catalog.get(workflow)!;
    const adverts = await this.capabilities.live();
    return adverts.length === 0 ? null : judgeFleet(requirementsOf(template, values), adverts);
  }

  /**
   * The submit script, confirmed by REDIS_MIN_REPLICAS_ACK replicas before anyone is told the job is accepted (a
   * refusal wrote nothing and needs no confirmation).
   */
  private async runSubmit(args: SubmitScriptArgs, onSent?: () => void): Promise<SubmitOutcome> {
    try {
      return await this.ledger.submit(args, { onSent });
    } catch (err) {
      if (!(err instanceof ReplicasUnconfirmedError)) throw err;
      throw new ReplicasUnconfirmedJobError(err.wanted, err.confirmed, REPLICAS_RETRY_AFTER_SECONDS);
    }
  }

  private async releaseInputs(jobId: string, inputs: Record<string, JobInputValue>): Promise<void> {
    await releaseJobInputs(this.blobs, jobId, inputs).catch(() => undefined);
  }

  /** Position 0: a worker has already taken the job (it left the queue before we answered). */
  private async position(
    jobId: string,
    costKey?: string,
    capableInstances?: number,
  ): Promise<{ position: number; etaSeconds: number | null }> {
    const { position, etaSeconds } = await this.queue.positionOf(jobId, costKey, capableInstances);
    return { position: position ?? 0, etaSeconds };
  }

  /**
   * Cancels a job. A job still in our queue is cancelled here and now (whoever removes it from the queue set
   * first owns it: us, or the worker that picks it up); a running one gets `job.cancel-requested`, which the
   * worker running it acts on.
   */
  async cancel(jobId: string, by: string): Promise<{ id: string; status: 'cancelled' | 'cancelling' }> {
    const view = await this.views.get(jobId);
    const known = view ?? (await this.views.hasRecord(jobId));
    if (!known) throw new JobNotFoundError(jobId);
    if (view && isTerminal(view.status)) throw new JobFinishedError(jobId, view.status);
    const removed = await this.ledger.cancelQueued(jobId, by);
    const meta = { jobId, correlationId: view?.correlationId ?? jobId, actor: by };
    await this.publisher.publish('job.cancel-requested', meta, { by });
    if (removed) {
      await this.ledger.publishCancelled(meta, { by, whileQueued: true });
      return { id: jobId, status: 'cancelled' };
    }
    return { id: jobId, status: 'cancelling' };
  }

  private validate(workflow: unknown, inputs: unknown): WorkflowInputValues {
    if (typeof workflow !== 'string' || !WORKFLOW_NAME.test(workflow)) {
      throw new InvalidRequestError([
        { field: 'workflow', message: 'must be a workflow name (see GET /v1/workflows)' },
      ]);
    }
    const template = this.catalog.get(workflow);
    if (!template) {
      const known = this.catalog.names().join(', ');
      throw new InvalidRequestError([
        { field: 'workflow', message: `unknown workflow "${workflow}"; known: ${known}` },
      ]);
    }
    const result = validateInputs(template, inputs, {
      maxImageBytes: this.config.maxImageBytes,
      maxStringLength: this.config.maxPromptLength,
    });
    if (!result.ok) throw new InvalidRequestError(result.errors);
    return result.values;
  }

  /**
   * A job accepted now would need Redis for its events, view and (Redis backend) images: above the watermark it is
   * refused up front rather than failing halfway through the pipeline when Redis refuses writes.
   */
  private async refuseWhenNearlyFull(): Promise<void> {
    const percent = (x: number) => `${Math.round(x * 100)}%`;
    const [memory, usage] = await Promise.all([this.memory.read(), this.blobs.usage()]);
    if (memory.aboveWatermark && memory.ratio !== null) {
      throw new ServiceOverloadedError(
        'redis_memory',
        `The service is at capacity (Redis memory ${percent(memory.ratio)} of maxmemory, limit ` +
          `${percent(memory.watermark)}); no new jobs until it drains. Try again shortly.`,
        REDIS_FULL_RETRY_AFTER_SECONDS,
      );
    }
    // The Redis image store past the same share of its cap: the job's result would not fit (it would be retried
    // on the GPU, then parked in the DLQ), so it is refused now.
    // With shards each takes an even share of the cap, and a put is checked against its own: the fullest decides.
    const fullest = usage.fullest ?? 0;
    if (fullest >= this.config.redisMemoryHighWatermark) {
      throw new ServiceOverloadedError(
        'blob_store_full',
        `The image store is at capacity (${percent(fullest)} of BLOB_REDIS_MAX_BYTES` +
          `${this.keys.shardCount > 1 ? ', in its fullest shard' : ''}); try again shortly.`,
        BLOB_FULL_RETRY_AFTER_SECONDS,
      );
    }
  }

  /**
   * Images go to the blob store (events carry refs), held by the job until it ends (released by the projector)
   * or, at most, BLOB_TTL_SECONDS; "random" seeds are fixed now so a replay is faithful.
   */
  private async storeInputs(
    jobId: string,
    workflow: string,
    values: WorkflowInputValues,
  ): Promise<Record<string, JobInputValue>> {
    const specs = this.catalog.get(workflow)?.inputs ?? {};
    const out: Record<string, JobInputValue> = {};
    const hold = { holder: blobHolders.input(jobId), ttlSeconds: this.config.blobs.ttlSeconds };
    try {
      for (const [name, value] of Object.entries(values)) {
        if (typeof value === 'object') out[name] = { blob: await this.putInput(value.bytes, value.mime, hold) };
        else out[name] = value === 'random' && specs[name]?.type === 'integer' ? randomSeed() : value;
      }
    } catch (err) {
      await this.releaseInputs(jobId, out); // the images stored before the one that failed
      throw err;
    }
    return out;
  }

  private async putInput(bytes: Buffer, mime: string, hold: BlobHold) {
    try {
      return await this.blobs.put(bytes, mime, hold);
    } catch (err) {
      if (err instanceof BlobStoreFullError) {
        throw new ServiceOverloadedError('blob_store_full', 'The image store is full; try again shortly.', 60);
      }
      if (err instanceof BlobStoreUnavailableError) {
        throw new ServiceOverloadedError(
          'blob_store_unavailable',
          'The image store is unavailable; try again shortly.',
          10,
        );
      }
      throw err;
    }
  }
}

/** Instances up now that can run the job (all of them read), for the ETA; undefined when not judged. */
function capableNow(fleet: FleetVerdict | null): number | undefined {
  return fleet && fleet.unknown.length === 0 ? fleet.capableUp.length : undefined;
}

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/** Same key + same request → same job; same key + different request → 422. Images count by content. */
function fingerprintOf(workflow: string, inputs: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([workflow, canonical(inputs)]))
    .digest('hex')
    .slice(0, 32);
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
