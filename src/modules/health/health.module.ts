import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthContributors } from './health-contributors';
import { HealthController } from './health.controller';
import { RedisHealthIndicator } from './redis.health';
import { StorageHealthIndicator } from './storage.health';
import { StreamsHealthIndicator } from './streams.health';
import { StreamStatsReader } from '../operations';

@Global()
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json', logger: false })],
  controllers: [HealthController],
  providers: [
    RedisHealthIndicator,
    StreamsHealthIndicator,
    StorageHealthIndicator,
    HealthContributors,
    StreamStatsReader,
  ],
  exports: [HealthContributors, StreamsHealthIndicator],
})
export class HealthModule {}
