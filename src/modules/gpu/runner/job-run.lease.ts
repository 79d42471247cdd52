import type Redis from 'ioredis';
import { LEASE_RELEASE, LEASE_TAKE } from '../../../redis/scripts';
import type { StreamKeys } from '../../../streams/stream-keys';

/** Outlives any run; a dead holder's lease is taken over by its own entry's redelivery, not by waiting. */
const RUN_LEASE_TTL_MS = 6 * 3600 * 1000;

/**
 * Which request entry runs a job. A job has one request entry, but a replay or a producer bug can append a second
 * while the first runs; both would run the GPU work. The lease names the entry: the same entry (redelivered to a
 * peer after its worker died) takes over, another entry of the same job stands aside.
 */
export class JobRunLease {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  private key(jobId: string): string {
    return `${this.keys.prefix}gpu:run:${jobId}`;
  }

  /** Null when this entry may run the job; otherwise the entry that holds it. */
  async take(jobId: string, entry: string): Promise<string | null> {
    const holder = await LEASE_TAKE.run(this.redis, [this.key(jobId)], [entry, String(RUN_LEASE_TTL_MS)]);
    return typeof holder === 'string' ? holder : null;
  }

  async release(jobId: string, entry: string): Promise<void> {
    await LEASE_RELEASE.run(this.redis, [this.key(jobId)], [entry]);
  }
}
