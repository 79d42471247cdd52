import { Ctx, Payload } from '@nestjs/microservices';
import type { JobEnvelope } from '../../../streams/job-event.types';
import { OnStreamEvent, StreamController } from '../../../streams/on-stream-event.decorator';
import { StreamContext } from '../../../streams/stream.context';
import { StatusRefresherService } from '../status/status-refresher.service';
import { JobFinisherService } from './job-finisher.service';

/**
 * The `bot` consumer group on `jobs:events`: final events are handled here, durably (an entry is acked only
 * after the chat has been told), whichever replica reads them. Progress is not: it is sampled by the refresher.
 */
@StreamController()
export class BotEventsController {
  constructor(
    private readonly finisher: JobFinisherService,
    private readonly refresher: StatusRefresherService,
  ) {}

  @OnStreamEvent('job.completed', 'bot')
  onCompleted(@Payload() event: JobEnvelope<'job.completed'>, @Ctx() ctx: StreamContext): Promise<void> {
    return this.finisher.completed(event, ctx);
  }

  @OnStreamEvent('job.failed', 'bot')
  async onFailed(@Payload() event: JobEnvelope<'job.failed'>, @Ctx() ctx: StreamContext): Promise<void> {
    if (event.payload.willRetry) {
      this.refresher.kick(event.jobId);
      return;
    }
    await this.finisher.failed(event.jobId, event.payload.code, ctx);
  }

  @OnStreamEvent('job.cancelled', 'bot')
  onCancelled(@Payload() event: JobEnvelope<'job.cancelled'>, @Ctx() ctx: StreamContext): Promise<void> {
    return this.finisher.cancelled(event.jobId, ctx);
  }

  @OnStreamEvent('job.dead-lettered', 'bot')
  async onDeadLettered(@Payload() event: JobEnvelope<'job.dead-lettered'>, @Ctx() ctx: StreamContext): Promise<void> {
    // Only dead letters that end the job (the work itself failed); a dead-lettered delivery is the operators'.
    if (event.payload.endsJob) await this.finisher.failed(event.jobId, 'dead_lettered', ctx);
  }
}
