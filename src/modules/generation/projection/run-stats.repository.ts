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

  /** Learned in the job's own shard, as the completion script does. */
  async recordRun(jobId: string, drawMs: number, costKey: string): Promise<void> {
    const ms = String(Math.max(0, Math.round(drawMs)));
    await RUN_STATS_EMA.run(
      this.redis,
      [this.keys.forJob(jobId).runStats],
      [ms, costKey, workflowOf(costKey), String(workOf(costKey))],
    );
  }

  /**
   * What is known for predicting a job of this cost class: its class, its workflow, every workflow. Each shard learns
   * from its own jobs (the completion script updates its shard's `stats:run`); with STREAM_SHARDS > 1 the shard
   * that has seen the most runs answers each field it knows.
   */
  async learned(costKey: string): Promise<LearnedRunTimes> {
    const fields = ['avgRunMs', 'perWork', `k:${costKey}`, `w:${workflowOf(costKey)}`, 'completed'];
    const rows = await Promise.all(this.keys.shards.map((k) => this.redis.hmget(k.runStats, ...fields)));
    rows.sort((a, b) => (Number(b[4]) || 0) - (Number(a[4]) || 0));
    const first = (i: number) => rows.map((row) => positive(row[i])).find((v) => v !== undefined);
    return { recentMs: first(0), perWork: first(1), classMs: first(2), workflowPerWork: first(3) };
  }
}

function positive(value: string | null | undefined): number | undefined {
  const n = Number(value);
  return value != null && Number.isFinite(n) && n > 0 ? n : undefined;
}
