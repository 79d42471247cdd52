import { Inject, Injectable } from '@nestjs/common';
import { JOB_VIEW_CAS_WRITE } from '../../../redis/scripts';
import type Redis from 'ioredis';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import type { JobView } from './job-view';
import { hashToView, viewToHash } from './job-view.codec';
import { reduceJobView } from './job-view.reducer';

const MAX_CAS_ATTEMPTS = 20;

@Injectable()
export class JobViewRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
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
      const rev = hash.rev ?? '';
      const fields = Object.entries({ ...viewToHash(after), rev: String(Number(rev || 0) + 1) }).flat();
      const ok = await JOB_VIEW_CAS_WRITE.run(this.redis, [key], [rev, String(ttlFor(after)), ...fields]);
      if (ok === 1) return { before, after };
    }
    throw new Error(`job view ${event.jobId} kept changing under ${MAX_CAS_ATTEMPTS} concurrent writers`);
  }
}
