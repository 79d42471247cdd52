import { Inject, Injectable } from '@nestjs/common';
import { JOB_VIEW_CAS_WRITE } from '../../../redis/scripts';
import type { RedisClient } from '../../../redis/redis-client';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { decodeEntry, ENVELOPE_FIELD } from '../../../streams/envelope.codec';
import type { AnyJobEnvelope, JobEnvelope } from '../../../streams/job-event.types';
import type { JobView } from './job-view';
import { hashToView, viewToHash } from './job-view.codec';
import { reduceJobView } from './job-view.reducer';

const MAX_CAS_ATTEMPTS = 20;
/** Views whose rev is read in one pipeline at most (projection rebuild). */
const REV_BATCH = 1_000;

/**
 * A job's read side: its view (`jobs:view:<id>`), the accepted-job record older releases wrote before the view
 * existed at submit (`jobs:record:<id>`), and its last progress tick. Everyone who reads a job's state reads it here.
 */
@Injectable()
export class JobViewRepository {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async get(jobId: string): Promise<JobView | undefined> {
    return hashToView(await this.redis.hgetall(this.keys.view(jobId)));
  }

  /**
   * Applies one event with optimistic concurrency; returns the view before and after.
   * `ttlSeconds` > 0 sets an expiry (used once a job is finished).
   */
  async apply(
    event: AnyJobEnvelope,
    ttlFor: (view: JobView) => number,
  ): Promise<{ before: JobView | undefined; after: JobView }> {
    const key = this.keys.view(event.jobId);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const hash = await this.redis.hgetall(key);
      const before = hashToView(hash);
      const after = reduceJobView(before, event);
      if (await this.replaceIfUnchanged(event.jobId, hash.rev ?? '', after, ttlFor(after))) return { before, after };
    }
    throw new Error(`job view ${event.jobId} kept changing under ${MAX_CAS_ATTEMPTS} concurrent writers`);
  }

  /** The accepted-job record, empty when there is none. */
  record(jobId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.record(jobId));
  }

  async hasRecord(jobId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.record(jobId))) === 1;
  }

  /** The job's latest progress tick (kept while it runs); undefined when there is none or it is unreadable. */
  async lastProgress(jobId: string): Promise<JobEnvelope<'job.progress'> | undefined> {
    const raw = await this.redis.get(this.keys.lastProgress(jobId));
    const decoded = raw ? decodeEntry([ENVELOPE_FIELD, raw]) : undefined;
    return decoded?.ok && decoded.envelope.type === 'job.progress' ? decoded.envelope : undefined;
  }

  /** Some fields of the view (HMGET), null where absent. */
  fields(jobId: string, ...names: string[]): Promise<(string | null)[]> {
    return this.redis.hmget(this.keys.view(jobId), ...names);
  }

  /** A view field, else the same-named field of the accepted-job record (both read in the same tick). */
  async fieldOrRecorded(jobId: string, viewField: string, recordField = viewField): Promise<string | null> {
    const [fromView, fromRecord] = await Promise.all([
      this.redis.hget(this.keys.view(jobId), viewField),
      this.redis.hget(this.keys.record(jobId), recordField),
    ]);
    return fromView ?? fromRecord;
  }

  /** Each view's `rev` ('' when absent or unreadable), read in pipelines of REV_BATCH. */
  async revs(jobIds: readonly string[]): Promise<Map<string, string>> {
    const revs = new Map<string, string>();
    for (let i = 0; i < jobIds.length; i += REV_BATCH) {
      const batch = jobIds.slice(i, i + REV_BATCH);
      // One HGET each, batched by the client (auto-pipelining; per primary on a cluster, where the views of several
      // shards are on several primaries and an explicit pipeline across them is refused).
      const values = await Promise.all(
        batch.map((jobId) => this.redis.hget(this.keys.view(jobId), 'rev').catch(() => null)),
      );
      values.forEach((value, n) => revs.set(batch[n], value ?? ''));
    }
    return revs;
  }

  /**
   * Writes `view` as the job's view if its rev is still `rev` (the projector's compare-and-set); true when written.
   * `ttlSeconds` > 0 sets an expiry.
   */
  async replaceIfUnchanged(jobId: string, rev: string, view: JobView, ttlSeconds: number): Promise<boolean> {
    const fields = Object.entries({ ...viewToHash(view), rev: String(Number(rev || 0) + 1) }).flat();
    const written = await JOB_VIEW_CAS_WRITE.run(
      this.redis,
      [this.keys.view(jobId)],
      [rev, String(ttlSeconds), ...fields],
    );
    return written === 1;
  }
}
