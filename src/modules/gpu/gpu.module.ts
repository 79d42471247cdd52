import { Inject, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import type { RedisClient } from '../../redis/redis-client';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store';
import { ROOT_LOGGER } from '../../common/root-logger';
import type { Logger } from '../../common/logger';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { ReplicaAck } from '../../redis/replica-ack';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { PoolCapabilityStore } from '../capabilities';
import { GenerationCoreModule } from '../generation';
import { HealthContributors } from '../health';
import { MetricsService } from '../metrics';
import { COMFYUI_ENDPOINTS, resolveComfyUiEndpoints, type ComfyUiEndpoints } from './embedded/embedded-simulators';
import { CapabilityAdvertService } from './pool/capability-advert.service';
import { ComfyUiPoolHealthIndicator } from './pool/comfyui-pool.health';
import { InstancePool } from './pool/instance-pool';
import { CancelRegistryService } from './runner/cancel-registry.service';
import { QueuePumpService } from './runner/queue-pump.service';
import { ComfyUiExecutor } from './runner/comfyui.executor';
import { GENERATION_EXECUTOR } from './runner/generation-executor';
import { CapablePeerFinder } from './runner/capable-peer.finder';
import { GpuWorkerAdvertService } from './runner/gpu-worker-advert.service';
import { JobPlacementStore } from './runner/job-placement.store';
import { JobRunnerController } from './runner/job-runner.controller';

/** The `gpu` role: the consumer group that runs `job.requested` on the ComfyUI instance pool. */
@Module({
  imports: [TerminusModule, GenerationCoreModule],
  controllers: [JobRunnerController],
  providers: [
    CancelRegistryService,
    QueuePumpService,
    GpuWorkerAdvertService,
    CapablePeerFinder,
    PoolCapabilityStore,
    CapabilityAdvertService,
    {
      provide: COMFYUI_ENDPOINTS,
      inject: [APP_CONFIG, ROOT_LOGGER],
      useFactory: (config: AppConfig, log: Logger) => resolveComfyUiEndpoints(config, log),
    },
    {
      provide: InstancePool,
      inject: [COMFYUI_ENDPOINTS, REDIS, StreamKeys, APP_CONFIG, ROOT_LOGGER, MetricsService],
      useFactory: async (
        endpoints: ComfyUiEndpoints,
        redis: RedisClient,
        keys: StreamKeys,
        config: AppConfig,
        log: Logger,
        metrics: MetricsService,
      ) => {
        const pool = new InstancePool({
          urls: endpoints.urls,
          redis,
          leaseKey: (id) => keys.instanceLeases(id),
          clientIdBase: `comfy-relay-${config.instanceName}-${process.pid}-${Date.now().toString(36)}`,
          // A dead worker's slots free up on the same clock as its stream entries.
          leaseTtlMs: Math.max(1_000, config.claimIdleMs),
          logger: log,
          onHealth: (id, up) => metrics.comfyuiUp(id, up),
          modelTailsKey: config.gpuModelAffinity ? keys.modelTails : undefined,
        });
        await pool.start();
        return pool;
      },
    },
    {
      provide: JobPlacementStore,
      inject: [REDIS, StreamKeys, ReplicaAck],
      useFactory: (redis: RedisClient, keys: StreamKeys, acks: ReplicaAck) => new JobPlacementStore(redis, keys, acks),
    },
    {
      provide: GENERATION_EXECUTOR,
      inject: [InstancePool, JobPlacementStore, BLOB_STORE, APP_CONFIG, ROOT_LOGGER],
      useFactory: (
        pool: InstancePool,
        placements: JobPlacementStore,
        blobs: BlobStore,
        config: AppConfig,
        log: Logger,
      ) => new ComfyUiExecutor(pool, placements, blobs, config, log),
    },
  ],
})
export class GpuModule implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly pool: InstancePool,
    private readonly contributors: HealthContributors,
    private readonly health: HealthIndicatorService,
    @Inject(COMFYUI_ENDPOINTS) private readonly endpoints: ComfyUiEndpoints,
  ) {}

  onModuleInit(): void {
    const indicator = new ComfyUiPoolHealthIndicator(this.pool, this.health);
    this.contributors.register({ key: 'comfyui', check: () => indicator.check() });
  }

  /** After the stream consumers have drained (Nest closes microservices before shutdown hooks). */
  async onApplicationShutdown(): Promise<void> {
    await this.pool.close();
    await this.endpoints.stop();
  }
}
