import { Module } from '@nestjs/common';
import { PoolCapabilityStore } from '../capabilities';
import { GenerationService } from './commands/generation.service';
import { QueuePositionService } from './commands/queue-position.service';
import { JobLedger } from './ledger/job-ledger';
import { JobQueueReader } from './ledger/job-queue.reader';
import { DrainFlagStore } from './commands/drain-flag.store';
import { GpuWorkerAdvertStore } from './commands/gpu-worker-advert.store';
import { JobViewRepository } from './projection/job-view.repository';
import { RunStatsRepository } from './projection/run-stats.repository';

/** Job commands and the read model's repositories: used by the api, bot and gpu roles and by the projector. */
@Module({
  providers: [
    GenerationService,
    QueuePositionService,
    JobViewRepository,
    RunStatsRepository,
    JobLedger,
    JobQueueReader,
    GpuWorkerAdvertStore,
    DrainFlagStore,
    PoolCapabilityStore,
  ],
  exports: [
    GenerationService,
    QueuePositionService,
    JobViewRepository,
    RunStatsRepository,
    JobLedger,
    GpuWorkerAdvertStore,
    DrainFlagStore,
  ],
})
export class GenerationCoreModule {}
