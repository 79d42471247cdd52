import type { RedisClient } from '../../../redis/redis-client';
import type { ReplicaAck } from '../../../redis/replica-ack';
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
 *
 * With REDIS_MIN_REPLICAS_ACK it is written as an acknowledged write: the prompt is sent only once replicas hold
 * the placement and, before it on the same primary, the worker's delivery and claim of the entry. A failover can then
 * lose the job's later events but never the record that its prompt exists: whoever runs the job next re-attaches to
 * the prompt instead of sending it again.
 */
export class JobPlacementStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
    private readonly acks: ReplicaAck,
  ) {}

  async get(jobId: string): Promise<JobPlacement | null> {
    return parsePlacement(await this.redis.get(this.keys.placement(jobId)));
  }

  /**
   * Waits for the replicas as long as the primary stays the same and `signal` allows (a job that cannot be placed
   * safely waits, it does not fail); throws ReplicasUnconfirmedError after a reconnect, when the claim itself may
   * have been lost (the runner retries the job, claiming it again).
   */
  async set(jobId: string, placement: JobPlacement, signal?: AbortSignal): Promise<void> {
    const value = JSON.stringify(placement);
    const key = this.keys.placement(jobId);
    await this.acks.write((redis) => redis.set(key, value, 'EX', PLACEMENT_TTL_SECONDS), {
      ...(signal ? { patience: signal } : {}),
      key,
    });
  }
}
