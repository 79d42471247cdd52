import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Logger as PinoLogger } from 'pino';
import type { Registry } from 'prom-client';
import { ROOT_LOGGER } from '../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { errorMessage } from '../../streams/stream-errors';
import { StreamKeys } from '../../streams/stream-keys';
import { StreamTail } from '../../streams/stream-tail';
import { StreamTailFactory } from '../../streams/stream-tail.factory';
import { JobViewRepository } from '../generation';
import { JobEventMetrics } from './job-event.metrics';
import { METRICS_REGISTRY } from './metrics.registry';

/**
 * Feeds JobEventMetrics from a plain XREAD tail of the request and event streams, in processes with the `api`
 * role only.
 *
 * Why a tail and not a consumer group: a `metrics` group would count each event once across replicas, but it
 * holds entries pending while no api process runs, and retention never trims past a group's pending entries;
 * a crashed replica's claimed entries would also be counted twice. A tail holds nothing. The price: every api
 * replica sees every event, so each exports the cluster-wide totals (from its own start). Aggregate the job
 * counters across replicas with max(), e.g. `max by (workflow) (rate(comfy_relay_jobs_completed_total[5m]))`,
 * never sum().
 */
@Injectable()
export class JobEventMetricsTail implements OnModuleInit, OnApplicationShutdown {
  private tail?: StreamTail;
  readonly metrics: JobEventMetrics;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(ROOT_LOGGER) private readonly log: PinoLogger,
    private readonly keys: StreamKeys,
    private readonly tails: StreamTailFactory,
    views: JobViewRepository,
  ) {
    const workflowOf = async (jobId: string) => (await views.fieldOrRecorded(jobId, 'workflow')) ?? undefined;
    this.metrics = new JobEventMetrics(registry, workflowOf, config.jobTimeoutMs * 2);
  }

  onModuleInit(): void {
    if (!this.config.roles.has('api')) return;
    const k = this.keys;
    // Counters need not be live to the millisecond: read a busy pipeline in batches (a read per batch, not per event).
    this.tail = this.tails.open(
      k.shards.flatMap((s) => [s.requestsPriority, s.requests, s.events]),
      this.log,
      { coalesceMs: 100 },
    );
    this.tail.subscribe(({ envelope }) => {
      this.metrics.observe(envelope).catch((err: unknown) => {
        this.log.debug({ err: errorMessage(err), jobId: envelope.jobId }, 'job metrics update failed');
      });
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.tail?.close();
  }
}
