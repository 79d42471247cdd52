import { withTimeout } from '../../common/with-timeout.util';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type Redis from 'ioredis';
import { REDIS } from '../../streams/redis.provider';
import { errorMessage } from '../../streams/stream-errors';

const PING_TIMEOUT_MS = 1_000;

@Injectable()
export class RedisHealthIndicator {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'redis'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const started = Date.now();
    try {
      await withTimeout(this.redis.ping(), PING_TIMEOUT_MS);
      return session.up({ latencyMs: Date.now() - started });
    } catch (err) {
      return session.down({ message: errorMessage(err), connection: this.redis.status });
    }
  }
}
