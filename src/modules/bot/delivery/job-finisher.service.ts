import { Injectable } from '@nestjs/common';
import type { JobEnvelope } from '../../../streams/job-event.types';
import { RetryLaterError } from '../../../streams/stream-errors';
import type { StreamContext } from '../../../streams/stream.context';
import { pickLang } from '../i18n';
import { UserSettingsStore } from '../settings/user-settings.store';
import { BotJobStore, type BotJobPhase, type BotJobRecord } from '../status/bot-job.store';
import { StatusMessengerService } from '../status/status-messenger.service';
import type { FinalOutcome } from '../status/status.renderer';
import { ResultDeliveryService } from './result-delivery.service';
import { JobLedger, JobViewRepository } from '../../generation';

/**
 * What the `bot` consumer group does with a job's final event: record the final phase (the first final event
 * wins), show it in the status message, and for a completed job deliver the images. Every step is idempotent,
 * so a redelivered event repeats nothing the chat already saw.
 */
@Injectable()
export class JobFinisherService {
  constructor(
    private readonly ledger: JobLedger,
    private readonly store: BotJobStore,
    private readonly views: JobViewRepository,
    private readonly settings: UserSettingsStore,
    private readonly messenger: StatusMessengerService,
    private readonly delivery: ResultDeliveryService,
  ) {}

  async completed(event: JobEnvelope<'job.completed'>, ctx: StreamContext): Promise<void> {
    const record = await this.settle(event.jobId, 'done');
    if (!record) return;
    await this.messenger.showFinal(record, { kind: 'done' }, ctx.signal);
    await this.delivery.deliver(record, event.payload.outputs, event.correlationId, ctx);
  }

  async failed(jobId: string, code: string, ctx: StreamContext): Promise<void> {
    await this.finish(jobId, 'failed', { kind: 'failed', code }, ctx);
  }

  async cancelled(jobId: string, ctx: StreamContext): Promise<void> {
    await this.finish(jobId, 'cancelled', { kind: 'cancelled' }, ctx);
  }

  private async finish(
    jobId: string,
    phase: Exclude<BotJobPhase, 'live'>,
    outcome: FinalOutcome,
    ctx: StreamContext,
  ): Promise<void> {
    const record = await this.settle(jobId, phase);
    if (record) await this.messenger.showFinal(record, outcome, ctx.signal);
  }

  /** The job's record once its final phase is `phase`; undefined when it is not a Telegram job or ended otherwise. */
  private async settle(jobId: string, phase: Exclude<BotJobPhase, 'live'>): Promise<BotJobRecord | undefined> {
    const record = (await this.store.get(jobId)) ?? (await this.adopt(jobId));
    if (!record) return undefined;
    const before = await this.store.finish(jobId, phase);
    return before === 'live' || before === phase ? record : undefined;
  }

  /**
   * A Telegram job this bot did not take in itself (re-driven from the DLQ, or submitted before a Redis restart
   * lost the record): registered from the projection's origin. A Telegram job the projection has not seen yet is
   * retried later; anything else is not ours.
   */
  private async adopt(jobId: string): Promise<BotJobRecord | undefined> {
    const view = await this.views.get(jobId);
    if (!view) {
      const userId = await this.ledger.ownerOf(jobId);
      if (userId?.startsWith('tg:')) throw new RetryLaterError(`job ${jobId} is not projected yet`);
      return undefined;
    }
    const origin = view.telegram;
    if (!origin) return undefined;
    const chosen = await this.settings.get(origin.userId);
    await this.store.register({
      jobId,
      chatId: origin.chatId,
      userId: origin.userId,
      lang: pickLang(chosen.lang, origin.language),
      replyTo: origin.messageId,
      workflow: view.workflow ?? 'txt2img',
      prompt: '',
      createdAt: Date.now(),
    });
    return this.store.get(jobId);
  }
}
