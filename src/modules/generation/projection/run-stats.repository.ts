import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { RUN_STATS_EMA } from '../../../redis/scripts';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { workflowOf, workOf } from '../eta/run-cost';
import type { LearnedRunTimes } from '../eta/run-time.predictor';

/** Learned run times (`stats:run`), written as runs finish, read for ETAs. */
@Injectable()
export class RunStatsRepository {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async recordRun(drawMs: number, costKey: string): Promise<void> {
    const ms = String(Math.max(0, Math.round(drawMs)));
    await RUN_STATS_EMA.run(
      this.redis,
      [this.keys.runStats],
      [ms, costKey, workflowOf(costKey), String(workOf(costKey))],
    );
  }

  /** What is known for predicting a job of this cost class: its class, its workflow, every workflow. */
  async learned(costKey: string): Promise<LearnedRunTimes> {
    const [recent, perWork, byClass, byWorkflow] = await this.redis.hmget(
      this.keys.runStats,
      'avgRunMs',
      'perWork',
      `k:${costKey}`,
      `w:${workflowOf(costKey)}`,
    );
    return {
      recentMs: positive(recent),
      perWork: positive(perWork),
      classMs: positive(byClass),
      workflowPerWork: positive(byWorkflow),
    };
  }
}

function positive(value: string | null | undefined): number | undefined {
  const n = Number(value);
  return value != null && Number.isFinite(n) && n > 0 ? n : undefined;
}
