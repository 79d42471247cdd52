import { Controller, Get, UseGuards } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { withTimeout } from '../../common/with-timeout.util';
import { OperatorAccessGuard } from '../../http/operator-access.guard';
import { RedisHealthIndicator } from './redis.health';

const CONTRIBUTOR_TIMEOUT_MS = 2_000;
import { StorageHealthIndicator } from './storage.health';
import { StreamsHealthIndicator } from './streams.health';
import { HealthContributors } from './health-contributors';

/**
 * /health: everything (503 with details when anything is down), for this machine or a caller with an API key
 * (OperatorAccessGuard); /health/live: the process; /health/ready: deps — both open, for probes and balancers.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly redis: RedisHealthIndicator,
    private readonly streams: StreamsHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    private readonly contributors: HealthContributors,
    private readonly indicators: HealthIndicatorService,
  ) {}

  @Get()
  @UseGuards(OperatorAccessGuard)
  // No swagger documentation: terminus would require @nestjs/swagger for it in every role (it is loaded for the
  // api role only, where /openapi.json is served).
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.redis.check(),
      () => this.storage.redisMemory(),
      () => this.streams.check(),
      () => this.storage.blobStore(),
      ...this.contributed(),
    ]);
  }

  @Get('live')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.redis.check(), ...this.contributed()]);
  }

  /** Role indicators, each bounded: a slow dependency makes /health say so, never hang. */
  private contributed() {
    return this.contributors.all().map((c) => async (): Promise<HealthIndicatorResult> => {
      try {
        return await withTimeout(c.check(), CONTRIBUTOR_TIMEOUT_MS);
      } catch (err) {
        return this.indicators.check(c.key).down({ message: err instanceof Error ? err.message : String(err) });
      }
    });
  }
}
