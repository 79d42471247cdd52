import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { RedisHealthIndicator } from './redis.health';
import { StreamsHealthIndicator } from './streams.health';
import { HealthContributors } from './health-contributors';

/** /health: everything (503 with details when anything is down); /health/live: the process; /health/ready: deps. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly redis: RedisHealthIndicator,
    private readonly streams: StreamsHealthIndicator,
    private readonly contributors: HealthContributors,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.redis.check(),
      () => this.streams.check(),
      ...this.contributors.all().map((c) => () => c.check()),
    ]);
  }

  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.redis.check(), ...this.contributors.all().map((c) => () => c.check())]);
  }
}
