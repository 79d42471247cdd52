import type Redis from 'ioredis';
import type { StreamKeys } from '../../../streams/stream-keys';

export interface JobPlacement {
  instanceId: string;
  promptId: string;
  attempt: number;
}

const PLACEMENT_TTL_SECONDS = 24 * 3600;

/**
 * Where a job's prompt was sent, written before POST /prompt. A worker that takes over a dead peer's job reads
 * it to re-attach to the prompt (or collect its outputs) instead of running the GPU work twice.
 */
export class JobPlacementStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  private key(jobId: string): string {
    return `${this.keys.prefix}gpu:placement:${jobId}`;
  }

  async get(jobId: string): Promise<JobPlacement | null> {
    const raw = await this.redis.get(this.key(jobId));
    if (!raw) return null;
    try {
      return JSON.parse(raw) as JobPlacement;
    } catch {
      return null;
    }
  }

  async set(jobId: string, placement: JobPlacement): Promise<void> {
    await this.redis.set(this.key(jobId), JSON.stringify(placement), 'EX', PLACEMENT_TTL_SECONDS);
  }

  async clear(jobId: string): Promise<void> {
    await this.redis.del(this.key(jobId));
  }
}
