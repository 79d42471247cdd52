import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { REDIS } from '../../streams/redis.provider';
import { errorMessage } from '../../streams/stream-errors';
import { StreamKeys } from '../../streams/stream-keys';
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
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'streams'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const [groups, dlq] = await withTimeout(Promise.all([this.groups(), this.redis.xlen(this.keys.dlq)]), 2_000);
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
      const raw = (await this.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
      for (const fields of raw) {
        const info = new Map<string, unknown>();
        for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
        const lag = info.get('lag') === null || info.get('lag') === undefined ? null : Number(info.get('lag'));
        const pending = Number(info.get('pending') ?? 0);
        const group: GroupHealth = {
          stream: stream.slice(this.keys.prefix.length),
          group: String(info.get('name')),
          lag,
          pending,
          consumers: Number(info.get('consumers') ?? 0),
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
