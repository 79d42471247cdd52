import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { errorMessage } from '../../streams/stream-errors';
import { StreamKeys } from '../../streams/stream-keys';
import { StreamStatsReader, type StreamsSnapshot } from '../operations';
import { withTimeout } from '../../common/with-timeout.util';

export interface GroupHealth {
  stream: string;
  group: string;
  lag: number | null;
  pending: number;
  consumers: number;
  problem?: string;
}

/** Group lag (entries not yet delivered) and pending (delivered, not acked) per stream, against thresholds. */
@Injectable()
export class StreamsHealthIndicator {
  constructor(
    private readonly stats: StreamStatsReader,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'streams'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const snapshot = await withTimeout(this.stats.snapshot(), 2_000);
      const groups = this.groupsOf(snapshot);
      const problems = groups.filter((g) => g.problem);
      const details = { groups, dlq: snapshot.dlqSize, thresholds: this.config.health };
      return problems.length > 0 ? session.down(details) : session.up(details);
    } catch (err) {
      return session.down({ message: errorMessage(err) });
    }
  }

  /** The work streams' groups from the operators' snapshot (the one `cli stats`, the bot and /metrics read). */
  private groupsOf(snapshot: StreamsSnapshot): GroupHealth[] {
    // Every shard's work streams (STREAM_SHARDS): a shard whose group lags is reported on its own.
    const watched = new Set(this.keys.shards.flatMap((k) => [k.requestsPriority, k.requests, k.events]));
    return snapshot.streams
      .filter((stream) => watched.has(stream.key))
      .flatMap((stream) =>
        stream.groups.map(({ group: name, lag, pending, consumers }) => {
          const group: GroupHealth = { stream: stream.name, group: name, lag, pending, consumers };
          if (lag !== null && lag > this.config.health.maxLag) {
            group.problem = `lag ${lag} > HEALTH_MAX_LAG ${this.config.health.maxLag}`;
          } else if (pending > this.config.health.maxPending) {
            group.problem = `pending ${pending} > HEALTH_MAX_PENDING ${this.config.health.maxPending}`;
          }
          return group;
        }),
      );
  }
}
