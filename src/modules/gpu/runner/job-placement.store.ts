import type Redis from 'ioredis';
import type { StreamKeys } from '../../../streams/stream-keys';

export interface JobPlacement {
  instanceId: string;
  promptId: string;
  attempt: number;
}

const PLACEMENT_TTL_SECONDS = 24 * 3600;

/** A stored placement, or null when there is none or it cannot be read. */
export function parsePlacement(raw: string | null): JobPlacement | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as JobPlacement;
  } catch {
    return null;
  }
}

/**
 * Where a job's prompt was sent, written before POST /prompt. A worker that takes over a dead peer's job learns it
 * with its claim (JobLedger.claimForRun) to re-attach to the prompt (or collect its outputs) instead of running the
 * GPU work twice. It goes when the job completes (JobLedger.append with `endsRunOf`).
 */
export class JobPlacementStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async get(jobId: string): Promise<JobPlacement | null> {
    return parsePlacement(await this.redis.get(this.keys.placement(jobId)));
  }

  async set(jobId: string, placement: JobPlacement): Promise<void> {
    await this.redis.set(this.keys.placement(jobId), JSON.stringify(placement), 'EX', PLACEMENT_TTL_SECONDS);
  }
}
