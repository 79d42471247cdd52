import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { simulateFinishMs } from '../eta/finish-time.simulator';
import { runCostKeyOf } from '../eta/run-cost';
import { predictRunMs } from '../eta/run-time.predictor';
import { JobQueueReader } from '../ledger/job-queue.reader';
import { JobViewRepository } from '../projection/job-view.repository';
import { RunStatsRepository } from '../projection/run-stats.repository';
import { GpuWorkerAdvertStore, parseAdvert } from './gpu-worker-advert.store';

export interface QueuePosition {
  /** 1 = next to run; undefined once a worker has taken the job. */
  position?: number;
  /** Seconds until the job is expected to finish; null when no worker is online to estimate from. */
  etaSeconds: number | null;
}

/** What draws: the distinct instances behind every live gpu process (processes may share instances). */
export interface GpuCapacity {
  workers: number;
  instances: number;
  slots: number;
}

/** In-flight jobs read for an ETA at most (the set holds one per gpu slot in the fleet). */
const MAX_INFLIGHT_READ = 10_000;

/**
 * Queue position is the job's rank in the fair queue (docs/fair-queue.md): its place in the order jobs will start,
 * exact when read (it falls as jobs ahead start; a later job of an account with fewer queued may take its turn
 * ahead). The ETA replays the fleet (eta/finish-time.simulator.ts): the jobs drawing now
 * and their start times, the jobs taken and waiting on an instance, the queue ahead, the instances that draw at
 * once, and run times learned per class of job (eta/run-time.predictor.ts).
 */
@Injectable()
export class QueuePositionService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: JobQueueReader,
    private readonly views: JobViewRepository,
    private readonly adverts: GpuWorkerAdvertStore,
    private readonly runStats: RunStatsRepository,
  ) {}

  /**
   * `costKey`: the job's cost class when the caller has it (saves a read). `capableInstances`: how many of the
   * instances can run this job and are up (a mixed pool): the ETA counts only them, and has none (null) while the
   * job waits for a quarantined one.
   */
  async positionOf(jobId: string, costKey?: string, capableInstances?: number): Promise<QueuePosition> {
    const now = Date.now();
    const key = costKey ?? (await this.costKeyOf(jobId));
    const [rank, learned, capacity, inflight] = await Promise.all([
      this.queue.rank(jobId),
      this.runStats.learned(key),
      this.capacity(now),
      this.queue.inflight(MAX_INFLIGHT_READ),
    ]);
    const position = rank === null ? undefined : rank + 1;
    const instances =
      capableInstances === undefined ? capacity.instances : Math.min(capacity.instances, capableInstances);
    if (instances === 0) return { position, etaSeconds: null };
    const ownMs = predictRunMs(learned, key);
    const stale = now - this.config.jobTimeoutMs * 2;
    const drawingSince: number[] = [];
    let waitingTaken = 0;
    let ownDrawingSince: number | undefined;
    let ownTakenAt: number | undefined;
    const waitingAt: number[] = [];
    for (let i = 0; i + 1 < inflight.length; i += 2) {
      const score = Number(inflight[i + 1]);
      if (Math.abs(score) < stale) continue; // a job whose end was never recorded: not ahead of anyone
      if (inflight[i] === jobId) {
        if (score > 0) ownDrawingSince = score;
        else ownTakenAt = -score;
        continue;
      }
      if (score > 0) drawingSince.push(score);
      else waitingAt.push(-score);
    }
    // A taken job waits behind the jobs taken before it; a queued one behind every taken job.
    waitingTaken = ownTakenAt === undefined ? waitingAt.length : waitingAt.filter((t) => t <= ownTakenAt).length;
    const finishMs = simulateFinishMs({
      now,
      instances,
      drawingSince,
      waitingTaken,
      queuedAhead: rank ?? 0,
      aheadMs: learned.recentMs ?? ownMs,
      ownMs,
      ownDrawingSince,
    });
    // Tenths of a second: a client rounds for display (the bot to 5 s); the API keeps what was estimated.
    return { position, etaSeconds: Math.max(0.1, Math.round(finishMs / 100) / 10) };
  }

  async queueLength(): Promise<number> {
    return this.queue.length();
  }

  async capacity(now = Date.now()): Promise<GpuCapacity> {
    // Read every time (one small hash): an ETA must see a worker the moment it comes online.
    return capacityOf(await this.adverts.all(), now);
  }

  private async costKeyOf(jobId: string): Promise<string> {
    const [costKey, workflow] = await this.views.fields(jobId, 'costKey', 'workflow');
    return costKey ?? runCostKeyOf(workflow ?? 'unknown', {});
  }
}

/** The fleet's live gpu processes, instances and job slots, from the raw `gpu:workers` adverts (ETA, `/stats`). */
export function capacityOf(adverts: readonly string[], now = Date.now()): GpuCapacity {
  const instances = new Set<string>();
  let workers = 0;
  let slots = 0;
  let unnamed = 0;
  for (const raw of adverts) {
    const advert = parseAdvert(raw);
    if (!advert || advert.expiresAt <= now) continue;
    workers++;
    slots += advert.slots;
    if (advert.instances) for (const id of advert.instances) instances.add(id);
    // An advert from a release that did not name its instances: one per pipeline of two slots.
    else unnamed += Math.ceil(advert.slots / 2);
  }
  return { workers, instances: instances.size + unnamed, slots };
}
