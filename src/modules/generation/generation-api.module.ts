import { Module, type OnModuleInit } from '@nestjs/common';
import { StreamTail } from '../../streams/stream-tail';
import { ApiKeyGuard } from './api/api-key.guard';
import { GenerationEventsSse } from './api/generation-events.sse';
import { GenerationQueryService } from './api/generation-query.service';
import { GenerationController } from './api/generation.controller';
import { GenerationCoreModule } from './generation-core.module';
import { JobTimelineReader } from './projection/job-timeline.reader';

/** The `api` role: HTTP API over the job commands and the read model. */
@Module({
  imports: [GenerationCoreModule],
  controllers: [GenerationController],
  providers: [GenerationQueryService, GenerationEventsSse, JobTimelineReader, ApiKeyGuard],
  exports: [GenerationQueryService],
})
export class GenerationApiModule implements OnModuleInit {
  constructor(private readonly tail: StreamTail) {}

  onModuleInit(): void {
    // Tail from start-up, so an SSE client arriving before the projection catches up still sees recent events.
    this.tail.ensureRunning();
  }
}
