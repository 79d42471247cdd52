import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import type { EnvelopeMeta } from '../../../streams/envelope.codec';
import type { JobEventPayloads } from '../../../streams/job-event.types';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamPublisher } from '../../../streams/stream.publisher';
import { runSubmitScript, type SubmitOutcome, type SubmitScriptArgs } from '../commands/job-submit.script';
import { TERMINAL_STATUSES, type JobStatus } from '../projection/job-view';

/** What a worker learns when it takes a job's request entry. */
export interface RunClaim {
  /** The job already ended (its request entry was redelivered after the work was done): nothing to run. */
  finished: boolean;
  /** Who cancelled it while it waited, if anyone. */
  cancelledBy: string | null;
}

/**
 * The generation module's public door to a job's state for the other roles (gpu, bot, operators): they change a
 * job through these methods and events, never by naming its keys (record, view, queue, per-user active set, cancel
 * flag and marker). Each method is one round trip.
 */
@Injectable()
export class JobLedger {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
  ) {}

  /**
   * A worker takes the job out of the queue and learns whether it was cancelled meanwhile or already finished.
   * The API sets the cancel flag before it announces a cancel, so a worker that registered its cancel listener
   * before this call either sees the flag here or hears the event — never neither.
   */
  async claimForRun(jobId: string): Promise<RunClaim> {
    const [, cancelledBy, status] = (await this.redis
      .multi()
      .zrem(this.keys.queue, jobId)
      .get(this.keys.cancelFlag(jobId))
      .hget(this.keys.view(jobId), 'status')
      .exec()) as [unknown, [Error | null, string | null], [Error | null, string | null]];
    return {
      finished: status[1] !== null && TERMINAL_STATUSES.has(status[1] as JobStatus),
      cancelledBy: cancelledBy[1],
    };
  }

  /** One `job.cancelled` per job, whoever (API or worker) gets there first. */
  async publishCancelled(meta: EnvelopeMeta, payload: JobEventPayloads['job.cancelled']): Promise<void> {
    const ttl = Math.ceil(this.config.retentionMs / 1000);
    await this.publisher.publishOnce(this.keys.cancelledMarker(meta.jobId), ttl, 'job.cancelled', meta, payload);
  }

  /** The user a job belongs to, from what the API recorded when it accepted it (before any projection). */
  async ownerOf(jobId: string): Promise<string | null> {
    return this.redis.hget(this.keys.record(jobId), 'userId');
  }

  /** The jobs a user has queued or running, sorted. */
  async activeJobs(userId: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.userActive(userId))).sort();
  }

  /** Accepts a prepared request (a re-drive): the same atomic submit as a new job's. */
  acceptRequest(args: SubmitScriptArgs): Promise<SubmitOutcome> {
    return runSubmitScript(this.redis, this.keys, args);
  }
}
