import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { JobViewRepository } from '../generation';
import { JobEventMetricsTail } from './job-event-metrics.tail';
import { MetricsController } from './metrics.controller';
import { createMetricsRegistry, METRICS_REGISTRY } from './metrics.registry';
import { MetricsService } from './metrics.service';
import { StreamMetricsCollector } from './stream-metrics.collector';
import { StreamStatsReader } from '../operations';

/**
 * `/metrics` for every role: process defaults (RSS, heap, event loop), stream/group state read at scrape time,
 * job counters and timings from the event streams (api role), and hooks for the gpu and bot modules
 * (MetricsService, see its header). Global, so role modules inject MetricsService without importing this module.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: METRICS_REGISTRY,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => createMetricsRegistry([...config.roles].sort().join(',')),
    },
    MetricsService,
    StreamStatsReader,
    StreamMetricsCollector,
    JobViewRepository,
    JobEventMetricsTail,
  ],
  exports: [METRICS_REGISTRY, MetricsService, StreamStatsReader],
})
export class MetricsModule {}
