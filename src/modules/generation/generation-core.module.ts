import { Module } from '@nestjs/common';
import { PoolCapabilityStore } from '../capabilities';
import { GenerationService } from './commands/generation.service';
import { QueuePositionService } from './commands/queue-position.service';
import { JobLedger } from './ledger/job-ledger';
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
    PoolCapabilityStore,
  ],
  exports: [GenerationService, QueuePositionService, JobViewRepository, RunStatsRepository, JobLedger],
})
export class GenerationCoreModule {}
