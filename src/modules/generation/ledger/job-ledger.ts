import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { BLOB_STORE, blobHolders, type BlobStore } from '../../../blobs/blob-store';
import { JOB_APPEND_APPLIED, JOB_CANCEL_QUEUED, JOB_CLAIM, JOB_DISPATCH, LEASE_RELEASE } from '../../../redis/scripts';
import { encodeEnvelope, makeEnvelope, type EnvelopeMeta } from '../../../streams/envelope.codec';
import type { AnyJobEnvelope, JobEnvelope, JobEventPayloads } from '../../../streams/job-event.types';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamPublisher } from '../../../streams/stream.publisher';
import { ReplicaAck } from '../../../redis/replica-ack';
import {
  runSubmitScript,
  type SubmitHooks,
  type SubmitOutcome,
  type SubmitScriptArgs,
} from '../commands/job-submit.script';
import { VirtualTimeFloor } from './virtual-time.floor';
import { inputsReleasable, isTerminal, TERMINAL_STATUSES, type JobView } from '../projection/job-view';
import { hashToView, viewToHash } from '../projection/job-view.codec';
import { reduceJobView } from '../projection/job-view.reducer';
import { drawMsOf } from '../eta/draw-time';
import { runCostKeyOf, workflowOf, workOf } from '../eta/run-cost';

/** Events a worker appends through the ledger (applied to the view as they are appended). */
export type AppliedEventType = 'job.accepted' | 'job.started' | 'job.completed' | 'job.failed';

/** The stream entry field that says "already applied to the view": the projector skips such entries. */
export const PROJECTED_FIELD = 'projected';

const MAX_APPLY_ATTEMPTS = 20;
const VIEW_CACHE_SIZE = 1_000;

function pairs(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1]!;
  return out;
}

/** What a worker learns when it takes a job's request entry. */
export interface RunClaim {
  /** The job already ended (its request entry was redelivered after the work was done): nothing to run. */
  finished: boolean;
  /** Who cancelled it while it waited, if anyone. */
  cancelledBy: string | null;
  /** Another request entry of this job holds its run (a replay or a duplicate append): this one stands aside. */
  runningFrom: string | null;
  /** Where an earlier attempt placed the prompt (the worker's JSON), if one did. */
  placement: string | null;
}

/** An account's share of the queue (`cli stats`). */
export interface QueueBacklog {
  account: string;
  queued: number;
  /** Where its next job stands in the queue (1: next to start). */
  nextPosition: number;
}

/** A run lease outlives any run; a dead holder's lease is taken over by its own entry's redelivery, not by waiting. */
const RUN_LEASE_TTL_MS = 6 * 3600 * 1000;

/**
 * The generation module's public door to a job's state for the other roles (gpu, bot, operators): they change a
 * job through these methods and events, never by naming its keys (record, view, queue, per-user active set, cancel
 * flag and marker, run lease). Each method is one round trip.
 */
@Injectable()
export class JobLedger {
  private readonly retentionSeconds: number;
  private readonly lastWritten = new Map<string, Record<string, string>>();
  private readonly vtimeFloor: VirtualTimeFloor;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
    private readonly acks: ReplicaAck,
  ) {
    this.retentionSeconds = Math.ceil(config.retentionMs / 1000);
    this.vtimeFloor = new VirtualTimeFloor(redis, keys);
  }

  /**
   * A worker takes the job's request entry `entry` (`<stream>|<id>`): out of the queue (into the in-flight set, so
   * an ETA never loses sight of it while it waits for an instance), and learns whether it was cancelled meanwhile,
   * already finished, or is run by another entry. One round trip; the view it reads is the worker's copy for the
   * transitions that follow. The API sets the cancel flag before it announces a cancel, so a worker that registered
   * its cancel listener before this call either sees the flag here or hears the event — never neither.
   */
  async claimForRun(jobId: string, entry: string): Promise<RunClaim> {
    const k = this.keys.forJob(jobId);
    const reply = (await JOB_CLAIM.run(
      this.redis,
      [k.view(jobId), k.queue, k.inflight, k.cancelFlag(jobId), k.runLease(jobId), k.placement(jobId)],
      [jobId, Date.now(), entry, RUN_LEASE_TTL_MS, k.prefix, this.config.queueDispatchAhead, ...TERMINAL_STATUSES],
    )) as [string, string | null, string[]?];
    const none = { finished: false, cancelledBy: null, runningFrom: null, placement: null };
    switch (reply[0]) {
      case 'finished':
        return { ...none, finished: true };
      case 'cancelled':
        return { ...none, cancelledBy: reply[1] };
      case 'duplicate':
        return { ...none, runningFrom: reply[1] };
      default:
        if (reply[2]?.length) this.remember(jobId, pairs(reply[2]));
        return { ...none, placement: reply[1] };
    }
  }

  /**
   * Sets the cancel flag and takes the job out of the queue: true when it was queued (it is cancelled now), false
   * when a worker has it (the worker hears the cancel). One round trip (JOB_CANCEL_QUEUED).
   */
  async cancelQueued(jobId: string, by: string): Promise<boolean> {
    const k = this.keys.forJob(jobId);
    const removed = await JOB_CANCEL_QUEUED.run(
      this.redis,
      [k.cancelFlag(jobId), k.queue],
      [by, this.retentionSeconds, jobId, k.prefix, this.config.queueDispatchAhead, this.retentionSeconds],
    );
    return removed === 1;
  }

  /**
   * Dispatches queued jobs into the request streams while fewer than QUEUE_DISPATCH_AHEAD wait there. Submits and
   * claims do this as they go; a worker also calls it now and then, so a queue whose dispatch was missed (a script
   * that failed halfway never leaves one: each is atomic; a change of QUEUE_DISPATCH_AHEAD can) still moves.
   */
  async dispatchQueued(): Promise<number> {
    let dispatched = 0;
    // Each shard has its own fair queue and request streams (STREAM_SHARDS).
    for (const k of this.keys.shards) {
      dispatched += (await JOB_DISPATCH.run(
        this.redis,
        [k.queue, k.queuePending],
        [k.prefix, this.config.queueDispatchAhead],
      )) as number;
    }
    return dispatched;
  }

  /**
   * The accounts (docs/fair-queue.md) with the most queued jobs, deepest first, with the position of each one's
   * next job: who holds the queue. Reads at most `scan` queued jobs (an operator's view, not a hot path).
   */
  async deepestBacklogs(limit = 10, scan = 10_000): Promise<QueueBacklog[]> {
    const perShard = await Promise.all(this.keys.shards.map((k) => this.backlogsOf(k, scan)));
    return perShard
      .flat()
      .sort((a, b) => b.queued - a.queued || a.nextPosition - b.nextPosition)
      .slice(0, limit);
  }

  /** One shard's accounts (an account's jobs are all in one shard); nextPosition is its place in that shard. */
  private async backlogsOf(keys: StreamKeys, scan: number): Promise<QueueBacklog[]> {
    const queued = await this.redis.zrange(keys.queue, 0, scan - 1);
    if (queued.length === 0) return [];
    const read = this.redis.pipeline();
    for (const jobId of queued) {
      read.hget(keys.queuedRequest(jobId), 'a');
      read.hget(keys.view(jobId), 'userId');
    }
    const replies = (await read.exec()) ?? [];
    const byAccount = new Map<string, QueueBacklog>();
    queued.forEach((_, i) => {
      const held = replies[i * 2]?.[1];
      const user = replies[i * 2 + 1]?.[1];
      // Dispatched jobs no longer hold their account: their user names it (a keyed job's user is under its key).
      const account = typeof held === 'string' ? held : typeof user === 'string' ? `user:${user}` : 'unknown';
      const entry = byAccount.get(account) ?? { account, queued: 0, nextPosition: i + 1 };
      entry.queued++;
      byAccount.set(account, entry);
    });
    return [...byAccount.values()];
  }

  /** The run lease `claimForRun` took for `entry` ends (the job ended, or the entry stands aside). */
  async releaseRun(jobId: string, entry: string): Promise<void> {
    await LEASE_RELEASE.run(this.redis, [this.keys.runLease(jobId)], [entry]);
  }

  /** One `job.cancelled` per job, whoever (API or worker) gets there first. */
  async publishCancelled(meta: EnvelopeMeta, payload: JobEventPayloads['job.cancelled']): Promise<void> {
    const ttl = Math.ceil(this.config.retentionMs / 1000);
    await this.publisher.publishOnce(this.keys.cancelledMarker(meta.jobId), ttl, 'job.cancelled', meta, payload);
  }

  /** The user a job belongs to, from what the API recorded when it accepted it (before any projection). */
  async ownerOf(jobId: string): Promise<string | null> {
    // Accepted-job records (jobs:record) were written by releases before the view was written at submit.
    const [fromView, fromRecord] = await Promise.all([
      this.redis.hget(this.keys.view(jobId), 'userId'),
      this.redis.hget(this.keys.record(jobId), 'userId'),
    ]);
    return fromView ?? fromRecord;
  }

  /** The jobs a user has queued or running, sorted. */
  async activeJobs(userId: string): Promise<string[]> {
    // A user's jobs are in its account's shard; the set of every shard is read (one SMEMBERS each) rather than
    // asking the caller for the account.
    const sets = await Promise.all(this.keys.shards.map((k) => this.redis.smembers(k.userActive(userId))));
    return sets.flat().sort();
  }

  /**
   * Appends a lifecycle event and applies it to the job's view in the same round trip (the one reducer computes
   * the new view; a concurrent writer costs a retry with the view the script hands back). The state a client
   * polls for is readable as soon as the event exists; the projector skips the entry (it is marked `projected`).
   * `endsRunOf`: the request entry whose run (claimForRun) ends with this event, if it ends the job: its run lease
   * is released and its placement forgotten in the same step.
   */
  async append<T extends AppliedEventType>(
    type: T,
    meta: EnvelopeMeta,
    payload: JobEventPayloads[T],
    options: { endsRunOf?: string } = {},
  ): Promise<{ id: string; envelope: JobEnvelope<T> }> {
    const envelope = makeEnvelope(type, meta, payload);
    const event = envelope as AnyJobEnvelope;
    const stream = this.publisher.streamFor(envelope);
    const k = this.keys.forJob(meta.jobId);
    const body = encodeEnvelope(envelope);
    // The view this process last wrote for the job, if any (a worker appends accepted → started → completed):
    // the CAS still guards it, so a stale copy costs a retry, never a lost update.
    let hash = this.lastWritten.get(meta.jobId) ?? (await this.redis.hgetall(this.keys.view(meta.jobId)));
    for (let attempt = 0; attempt < MAX_APPLY_ATTEMPTS; attempt++) {
      const before = hashToView(hash);
      const after = reduceJobView(before, event);
      const finished = isTerminal(after.status);
      const justFinished = finished && !(before && isTerminal(before.status));
      const reply = (await JOB_APPEND_APPLIED.run(
        this.redis,
        [
          stream,
          k.view(meta.jobId),
          k.timeline(meta.jobId),
          k.queue,
          k.userActive(after.userId ?? ''),
          k.lastProgress(meta.jobId),
          k.runStats,
          k.inflight,
          k.runLease(meta.jobId),
          k.placement(meta.jobId),
          ...(after.keyActiveSet ? [after.keyActiveSet] : []),
        ],
        [
          hash.rev ?? '',
          body,
          meta.jobId,
          stream.slice(k.prefix.length),
          finished ? this.retentionSeconds : 0,
          this.retentionSeconds,
          takenFlag(event),
          finished ? '1' : '0',
          ...learnedRun(before, event, justFinished),
          finished ? (options.endsRunOf ?? '') : '',
          ...viewChanges(hash, viewToHash(after)),
        ],
      )) as [number, string | string[]];
      if (reply[0] === 1) {
        this.remember(
          meta.jobId,
          finished ? undefined : { ...viewToHash(after), rev: String(Number(hash.rev ?? 0) + 1) },
        );
        if (after.inputBlobs && inputsReleasable(after)) {
          for (const blob of after.inputBlobs) await this.blobs.release(blob, blobHolders.input(meta.jobId));
        }
        return { id: reply[1] as string, envelope };
      }
      hash = pairs(reply[1] as string[]);
    }
    throw new Error(`job ${meta.jobId}: its view kept changing under ${MAX_APPLY_ATTEMPTS} concurrent writers`);
  }

  /** Bounded: jobs a process is running right now, not every job it ever touched. */
  private remember(jobId: string, hash: Record<string, string> | undefined): void {
    this.lastWritten.delete(jobId);
    if (!hash) return;
    if (this.lastWritten.size >= VIEW_CACHE_SIZE) {
      const oldest = this.lastWritten.keys().next().value;
      if (oldest !== undefined) this.lastWritten.delete(oldest);
    }
    this.lastWritten.set(jobId, hash);
  }

  /** How many jobs the user holds a slot for (queued or running; ended ones may linger until healed). */
  async activeCount(userId: string): Promise<number> {
    const counts = await Promise.all(this.keys.shards.map((k) => this.redis.scard(k.userActive(userId))));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The active set heals itself: members whose job has finished (or is long gone) no longer count. */
  async releaseEndedActiveJobs(userId: string): Promise<void> {
    for (const k of this.keys.shards) await this.releaseEndedIn(k.userActive(userId));
  }

  private async releaseEndedIn(key: string): Promise<void> {
    for (const jobId of await this.redis.smembers(key)) {
      const view = hashToView(await this.redis.hgetall(this.keys.view(jobId)));
      const recorded = (await this.redis.exists(this.keys.record(jobId))) === 1;
      if ((view && isTerminal(view.status)) || (!view && !recorded)) await this.redis.srem(key, jobId);
    }
  }

  /**
   * The projector's bookkeeping for an event it applied to the view (events not appended through `append`): the
   * timeline index, the queue and in-flight moves, and what a finished job held — in one MULTI. Idempotent, so done
   * again for every event of a finished job (a redelivery after a failed MULTI still frees them).
   */
  async recordProjected(event: AnyJobEnvelope, entry: { stream: string; id: string }, after: JobView): Promise<void> {
    const k = this.keys.forJob(event.jobId);
    const timeline = k.timeline(event.jobId);
    const multi = this.redis.multi();
    multi.zadd(timeline, Number(entry.id.split('-')[0]), `${entry.stream.slice(k.prefix.length)}|${entry.id}`);
    multi.expire(timeline, this.retentionSeconds);
    if ((event.type === 'job.accepted' || event.type === 'job.started') && !isTerminal(after.status)) {
      multi.zrem(k.queue, event.jobId);
      multi.zrem(k.queuePriority, event.jobId);
      // Scored as in JOB_APPEND_APPLIED: −(taken ms) while waiting on an instance, +(start ms) while drawing.
      const ms = Number(entry.id.split('-')[0]);
      if (event.type === 'job.started') multi.zadd(k.inflight, ms, event.jobId);
      else multi.zadd(k.inflight, 'NX', -ms, event.jobId);
    }
    if (isTerminal(after.status)) {
      if (after.userId) multi.srem(k.userActive(after.userId), event.jobId);
      if (after.keyActiveSet) multi.zrem(after.keyActiveSet, event.jobId);
      multi.zrem(k.queue, event.jobId);
      multi.zrem(k.queuePriority, event.jobId);
      multi.zrem(k.inflight, event.jobId);
      // Progress is shown only while a job runs: the last tick need not outlive it (Redis memory per job).
      multi.del(k.lastProgress(event.jobId));
    }
    await multi.exec();
  }

  /**
   * A new job's submit, confirmed by REDIS_MIN_REPLICAS_ACK replicas before it resolves (ReplicasUnconfirmedError
   * when they do not confirm in time; a refusal wrote nothing and needs no confirmation). `hooks.onSent` as in
   * runSubmitScript: reads started there share the script's round trip.
   */
  async submit(args: SubmitScriptArgs, hooks: SubmitHooks = {}): Promise<SubmitOutcome> {
    const vtimeFloor = await this.vtimeFloor.floor();
    return this.acks.write(
      async (redis) => {
        const outcome = await this.runSubmit(redis, { ...args, vtimeFloor }, hooks);
        // A repeat is answered with a job an earlier request wrote (maybe one that got 503): rewriting its
        // idempotency record unchanged makes the WAIT that follows cover that job too.
        if (outcome.kind === 'duplicate' && this.acks.enabled) {
          await redis.set(args.idempotencyKey, `${outcome.jobId}|${outcome.fingerprint}`, 'KEEPTTL', 'XX');
        }
        return outcome;
      },
      {
        needsAck: (outcome) => outcome.kind === 'accepted' || outcome.kind === 'duplicate',
        // Every key the submit writes is in the job's shard (its account's): one slot, one primary to WAIT on.
        key: this.keys.view(args.jobId),
      },
    );
  }

  /** Accepts a prepared request (a re-drive): the same atomic submit as a new job's. */
  async acceptRequest(args: SubmitScriptArgs): Promise<SubmitOutcome> {
    return this.runSubmit(this.redis, { ...args, vtimeFloor: await this.vtimeFloor.floor() });
  }

  private async runSubmit(redis: RedisClient, args: SubmitScriptArgs, hooks?: SubmitHooks): Promise<SubmitOutcome> {
    const outcome = await runSubmitScript(redis, this.keys.forJob(args.jobId), args, hooks);
    if (outcome.kind === 'accepted' && outcome.vtime !== undefined) this.vtimeFloor.learn(outcome.vtime);
    return outcome;
  }
}

/**
 * What a just-completed job teaches the ETA: its drawing time (from its start on the instance, not from when the
 * worker took it — a prompt queued behind another inside ComfyUI is waiting, not drawing) and its cost class.
 */
function learnedRun(
  before: JobView | undefined,
  event: AnyJobEnvelope,
  justFinished: boolean,
): [string | number, string, string, number] {
  if (!justFinished || event.type !== 'job.completed') return ['', '', '', 0];
  const costKey = before?.costKey ?? runCostKeyOf(before?.workflow ?? 'unknown', {});
  return [drawMsOf(before, event), costKey, workflowOf(costKey), workOf(costKey)];
}

/**
 * What the script writes: the count of fields the reducer dropped, those fields, then the fields whose value
 * changed (a transition changes a handful of a view's ~30 fields; writing them all cost Redis a DEL and a full HSET).
 */
function viewChanges(before: Record<string, string>, after: Record<string, string>): string[] {
  const dropped = Object.keys(before).filter((field) => field !== 'rev' && !(field in after));
  const changed = Object.entries(after).filter(([field, value]) => before[field] !== value);
  return [String(dropped.length), ...dropped, ...changed.flat()];
}

/**
 * How the event moves the job through the in-flight set (see JOB_APPEND_APPLIED). `job.accepted` moves nothing:
 * the worker's claim (claimForRun) took the job out of the queue into the in-flight set before it was placed.
 */
function takenFlag(event: AnyJobEnvelope): string {
  if (event.type === 'job.started') return '2';
  if (event.type === 'job.failed' && event.payload.willRetry) return '3';
  return '0';
}
