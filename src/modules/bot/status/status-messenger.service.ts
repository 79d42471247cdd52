import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { RetryLaterError } from '../../../streams/stream-errors';
import { ChatUnreachableHandler } from '../delivery/chat-unreachable.handler';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { TelegramCallError } from '../telegram/telegram-errors';
import { TelegramGateway } from '../telegram/telegram-gateway';
import { CallbackSigner } from '../updates/callback-data';
import { BotJobStore, type BotJobRecord } from './bot-job.store';
import type { LiveJobState } from './job-state.reader';
import { digestOf, renderFinal, renderLive, type FinalOutcome, type RenderedStatus } from './status.renderer';

/** Renewed while held (see BotJobStore.withEditLock): short, so a replica killed mid-edit blocks nobody for long. */
const EDIT_LOCK_TTL_MS = 3_000;
const CREATE_DEADLINE_MS = 15_000;
const FINAL_DEADLINE_MS = 15_000;
/** Queue positions change often under load; one edit per job per few seconds is plenty. */
const QUEUED_EDIT_INTERVAL_MS = 3_000;

/**
 * Shows a job's status message: creates it, edits it as the job moves, and writes the final state. Every send or
 * edit of one job's status message happens under that job's edit mutex in Redis and re-reads the record inside
 * it, so an in-flight progress edit can never land after the final one, whichever replica sent it.
 */
@Injectable()
export class StatusMessengerService {
  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly store: BotJobStore,
    private readonly gateway: TelegramGateway,
    private readonly blocklist: ChatBlocklistStore,
    private readonly unreachable: ChatUnreachableHandler,
    private readonly signer: CallbackSigner,
  ) {}

  /** The refresher's path: best effort, never throws; progress edits are droppable and simply skipped when busy. */
  async showLive(
    record: BotJobRecord,
    state: Exclude<LiveJobState, { kind: 'final' }>,
    signal?: AbortSignal,
  ): Promise<void> {
    const status = renderLive(record.lang, state, this.signer.sign('cancel', record.jobId, record.userId));
    const digest = digestOf(status);
    if (record.statusMessageId !== undefined && record.rendered === digest) return;
    try {
      if (record.statusMessageId === undefined) {
        await this.create(record.jobId, status, digest, signal);
        return;
      }
      if (state.kind === 'queued' && Date.now() - (record.editedAt ?? 0) < QUEUED_EDIT_INTERVAL_MS) return;
      await this.store.withEditLock(record.jobId, { ttlMs: EDIT_LOCK_TTL_MS, waitMs: 0 }, () =>
        this.editLive(record.jobId, status, digest),
      );
    } catch (err) {
      await this.onLiveError(record, err);
    }
  }

  /**
   * The bot group's path for a final event: waits for the edit mutex, shows the outcome without buttons, and
   * throws RetryLaterError when that can't be done now (the stream entry is retried later).
   */
  async showFinal(record: BotJobRecord, outcome: FinalOutcome, signal?: AbortSignal): Promise<void> {
    const status = renderFinal(record.lang, outcome);
    const digest = digestOf(status);
    const result = await this.store.withEditLock(
      record.jobId,
      { ttlMs: EDIT_LOCK_TTL_MS, waitMs: FINAL_DEADLINE_MS, signal },
      () => this.writeFinal(record.jobId, status, digest, outcome, signal),
    );
    if (!result.ran) throw new RetryLaterError(`status message of ${record.jobId} is busy; final state shown later`);
  }

  private async create(jobId: string, status: RenderedStatus, digest: string, signal?: AbortSignal): Promise<void> {
    await this.store.withEditLock(jobId, { ttlMs: EDIT_LOCK_TTL_MS, waitMs: 5_000, signal }, async () => {
      const fresh = await this.store.get(jobId);
      if (!fresh || fresh.phase !== 'live' || fresh.statusMessageId !== undefined) return;
      const message = await this.gateway.sendMessage(
        fresh.chatId,
        status.text,
        { replyTo: fresh.replyTo, keyboard: status.keyboard },
        { budget: 'mandatory', deadlineMs: CREATE_DEADLINE_MS, signal, jobId },
      );
      await this.store.setStatusMessage(jobId, message.message_id, digest);
    });
  }

  private async editLive(jobId: string, status: RenderedStatus, digest: string): Promise<void> {
    const fresh = await this.store.get(jobId);
    if (!fresh || fresh.phase !== 'live' || fresh.statusMessageId === undefined || fresh.rendered === digest) return;
    await this.gateway.editText(fresh.chatId, fresh.statusMessageId, status.text, status.keyboard, {
      budget: 'droppable',
      jobId,
      turnOf: jobId,
    });
    await this.store.setRendered(jobId, digest);
  }

  private async writeFinal(
    jobId: string,
    status: RenderedStatus,
    digest: string,
    outcome: FinalOutcome,
    signal?: AbortSignal,
  ): Promise<void> {
    const fresh = await this.store.get(jobId);
    if (!fresh || fresh.rendered === digest || (await this.blocklist.isBlocked(fresh.chatId))) return;
    const options = { budget: 'mandatory' as const, deadlineMs: FINAL_DEADLINE_MS, signal, jobId, turnOf: jobId };
    try {
      if (fresh.statusMessageId !== undefined) {
        await this.gateway.editText(fresh.chatId, fresh.statusMessageId, status.text, undefined, options);
        await this.store.setRendered(jobId, digest);
      } else if (outcome.kind !== 'done') {
        // Never shown while live (e.g. a very short job): a failure or cancellation still needs saying; a result
        // speaks for itself.
        const message = await this.gateway.sendMessage(fresh.chatId, status.text, { replyTo: fresh.replyTo }, options);
        await this.store.setStatusMessage(jobId, message.message_id, digest);
      }
    } catch (err) {
      if (!(err instanceof TelegramCallError)) throw err;
      if (err.kind === 'unreachable') {
        await this.unreachable.handle(fresh.chatId);
        return;
      }
      if (err.kind === 'gone' || err.kind === 'bad-request') {
        // The user deleted the status message, or Telegram refused this text: the result still goes out.
        this.log.warn({ jobId, err: err.message }, 'final status edit refused; continuing');
        await this.store.setRendered(jobId, digest);
        return;
      }
      throw new RetryLaterError(err.message, { cause: err });
    }
  }

  private async onLiveError(record: BotJobRecord, err: unknown): Promise<void> {
    if (!(err instanceof TelegramCallError)) {
      this.log.warn(
        { jobId: record.jobId, err: err instanceof Error ? err.message : String(err) },
        'status update failed',
      );
      return;
    }
    if (err.kind === 'unreachable') {
      await this.unreachable.handle(record.chatId).catch(() => undefined);
      this.log.info({ jobId: record.jobId, chatId: record.chatId }, 'chat unreachable (blocked?); status updates stop');
      return;
    }
    // Skipped progress edits (budget, 429) are the design, not a problem.
    if (err.kind !== 'rate-limited') this.log.debug({ jobId: record.jobId, err: err.message }, 'status edit skipped');
  }
}
