import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { errorMessage } from '../../streams/stream-errors';
import { StreamKeys } from '../../streams/stream-keys';
import { StreamReader } from '../../streams/stream.reader';
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
    private readonly streams: StreamReader,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'streams'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const [groups, dlq] = await withTimeout(Promise.all([this.groups(), this.streams.length(this.keys.dlq)]), 2_000);
      const problems = groups.filter((g) => g.problem);
      const details = { groups, dlq, thresholds: this.config.health };
      return problems.length > 0 ? session.down(details) : session.up(details);
    } catch (err) {
      return session.down({ message: errorMessage(err) });
    }
  }

  async groups(): Promise<GroupHealth[]> {
    const out: GroupHealth[] = [];
    for (const stream of [this.keys.requestsPriority, this.keys.requests, this.keys.events]) {
      const groups = await this.streams.groups(stream);
      for (const { group: name, lag, pending, consumers } of groups) {
        const group: GroupHealth = {
          stream: stream.slice(this.keys.prefix.length),
          group: name,
          lag,
          pending,
          consumers,
        };
        if (lag !== null && lag > this.config.health.maxLag) {
          group.problem = `lag ${lag} > HEALTH_MAX_LAG ${this.config.health.maxLag}`;
        } else if (pending > this.config.health.maxPending) {
          group.problem = `pending ${pending} > HEALTH_MAX_PENDING ${this.config.health.maxPending}`;
        }
        out.push(group);
      }
    }
    return out;
  }
}
