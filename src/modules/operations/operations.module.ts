import { Module } from '@nestjs/common';
import { DrainFlagStore, JobLedger, JobViewRepository } from '../generation';
import { DeadLetterStore } from './dead-letter.store';
import { DlqService } from './dlq.service';
import { DrainService } from './drain.service';
import { StreamStatsReader } from './stream-stats.reader';

/**
 * What operators do, written once: DLQ list and re-drive, drain on/off/status. The CLI and the bot's admin
 * commands both use it, so both behave the same.
 */
@Module({
  providers: [
    JobLedger,
    JobViewRepository,
    DrainFlagStore,
    DeadLetterStore,
    DlqService,
    DrainService,
    StreamStatsReader,
  ],
  exports: [DlqService, DrainService, JobLedger, StreamStatsReader],
})
export class OperationsModule {}
