import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { errorMessage } from '../../../streams/stream-errors';
import { texts } from '../i18n';
import { BotJobStore, type BotJobRecord } from '../status/bot-job.store';
import { digestOf, renderFinal, type FinalOutcome } from '../status/status.renderer';
import { StatusRefresherService } from '../status/status-refresher.service';
import { TelegramGateway } from '../telegram/telegram-gateway';
import { CallbackSigner } from './callback-data';
import type { Inbound } from './inbound';
import { PromptIntakeService } from './prompt-intake.service';
import { GenerationService, JobFinishedError, JobLedger, JobNotFoundError, JobViewRepository } from '../../generation';

/**
 * Cancel and Regenerate presses. The button's data must carry a valid signature for the presser (see
 * CallbackSigner), and the job must belong to them; every press is answered exactly once, whatever happens.
 */
@Injectable()
export class JobButtonsService {
  constructor(
    private readonly ledger: JobLedger,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly signer: CallbackSigner,
    private readonly gateway: TelegramGateway,
    private readonly generations: GenerationService,
    private readonly views: JobViewRepository,
    private readonly store: BotJobStore,
    private readonly refresher: StatusRefresherService,
    private readonly intake: PromptIntakeService,
  ) {}

  async press(from: Inbound, callbackQueryId: string, data: string): Promise<void> {
    let answer: { text: string; alert: boolean } = { text: '', alert: false };
    try {
      answer = await this.decide(from, data);
    } catch (err) {
      this.log.warn({ chatId: from.chatId, err: errorMessage(err) }, 'button press failed');
      answer = { text: texts(from.lang).internalError, alert: true };
    } finally {
      await this.gateway.answerCallback(callbackQueryId, answer.text, answer.alert);
    }
  }

  private async decide(from: Inbound, data: string): Promise<{ text: string; alert: boolean }> {
    const t = texts(from.lang);
    const parsed = this.signer.verify(data, from.userId);
    if (!parsed.ok) {
      this.log.info({ userId: from.userId, reason: parsed.reason }, 'refused a job button press');
      return { text: parsed.reason === 'forged' ? t.notYourJob : t.buttonExpired, alert: true };
    }
    // Defence in depth: the job itself must be this user's too.
    const view = await this.views.get(parsed.jobId);
    const owner = view?.userId ?? (await this.ledger.ownerOf(parsed.jobId));
    if (owner && owner !== `tg:${from.userId}`) return { text: t.notYourJob, alert: true };
    if (parsed.action === 'regenerate') {
      const original = await this.store.get(parsed.jobId);
      if (!original) return { text: t.buttonExpired, alert: true };
      // The new job answers the same user message as the original.
      return { text: await this.intake.regenerate({ ...from, messageId: original.replyTo }, original), alert: false };
    }
    const record = await this.store.get(parsed.jobId);
    // A second press (a double tap, or a press before the status message caught up) while the first is being
    // carried out: say so, and don't ask the worker again.
    if (record?.cancelRequested && record.phase === 'live') return { text: t.cancelUnderWay, alert: false };
    try {
      const result = await this.generations.cancel(parsed.jobId, `tg:${from.userId}`);
      await this.store.markCancelRequested(parsed.jobId);
      this.refresher.kick(parsed.jobId);
      return { text: result.status === 'cancelled' ? t.cancelAnswer : t.cancellingAnswer, alert: false };
    } catch (err) {
      if (err instanceof JobFinishedError) {
        // Cancelled, but the chat does not say so yet: from the user's side the cancel is still under way.
        const unseen =
          err.status === 'cancelled' && record !== undefined && !showsOutcome(record, { kind: 'cancelled' });
        return { text: unseen ? t.cancelUnderWay : t.alreadyFinished, alert: false };
      }
      if (err instanceof JobNotFoundError) return { text: t.buttonExpired, alert: true };
      throw err;
    }
  }
}

/** True once the job's status message shows this final outcome (the digest of what was last shown matches). */
function showsOutcome(record: BotJobRecord, outcome: FinalOutcome): boolean {
  return record.rendered === digestOf(renderFinal(record.lang, outcome));
}
