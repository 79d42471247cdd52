import { Inject, Injectable } from '@nestjs/common';
import { BlobStoreUnavailableError } from '../../../blobs/blob-errors';
import { BLOB_STORE, blobHolders, type BlobStore } from '../../../blobs/blob-store';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { sleep } from '../../../common/sleep.util';
import type { BlobRef } from '../../../streams/job-event.types';
import { RetryLaterError } from '../../../streams/stream-errors';
import { StreamPublisher } from '../../../streams/stream.publisher';
import type { StreamContext } from '../../../streams/stream.context';
import { texts } from '../i18n';
import type { BotJobRecord } from '../status/bot-job.store';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { TelegramCallError } from '../telegram/telegram-errors';
import { TelegramGateway } from '../telegram/telegram-gateway';
import { CallbackSigner } from '../updates/callback-data';
import { ChatUnreachableHandler } from './chat-unreachable.handler';
import { DeliveryLedger } from './delivery-ledger';
import { fitsAsPhoto } from './image-dimensions.util';

const SEND_DEADLINE_MS = 60_000;
const CAPTION_LIMIT = 1024;
const EXTENSIONS: Readonly<Record<string, string>> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };
/** How long a delivery waits out an image store outage before it fails (and is retried by the sweeper). */
const BLOB_OUTAGE_PATIENCE_MS = 10 * 60_000;

/**
 * Sends a finished job's images to its chat exactly once per image as far as the bot can know, then publishes
 * `job.delivered`. The ledger entry of an image is written "sending" before the Bot API call and "sent" (with the
 * message id) right after it; the stream entry is acked only after that. So:
 * - killed after the ledger says "sent", before the ack → the redelivered event finds "sent" and sends nothing;
 * - killed during the call itself (the only window left: between Telegram accepting the upload and our HSET, a
 *   few ms) → the redelivery finds "sending" with no message id. Telegram can't be asked whether the photo
 *   arrived, so we choose to send it again: a rare duplicate picture beats a user who waits forever for one that
 *   never came. The choice is logged as a warning when it happens.
 */

@Injectable()
export class ResultDeliveryService {
  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly ledger: DeliveryLedger,
    private readonly gateway: TelegramGateway,
    private readonly signer: CallbackSigner,
    private readonly publisher: StreamPublisher,
    private readonly unreachable: ChatUnreachableHandler,
    private readonly blocklist: ChatBlocklistStore,
  ) {}

  async deliver(
    record: BotJobRecord,
    outputs: readonly BlobRef[],
    correlationId: string,
    ctx: StreamContext,
  ): Promise<void> {
    const holder = `${ctx.entry.stream}|${ctx.entry.id}`;
    if (!(await this.ledger.lock(record.jobId, holder))) {
      throw new RetryLaterError(`job ${record.jobId} is being delivered by another event`);
    }
    try {
      const sent = await this.sendAll(record, outputs, ctx.signal);
      if (sent !== undefined) {
        const entry = await this.ledger.get(record.jobId);
        if (!entry.announced) {
          await this.publisher.publish(
            'job.delivered',
            { jobId: record.jobId, correlationId, actor: ctx.entry.consumer },
            { chatId: record.chatId, messageId: sent },
          );
          // A crash between these two lines publishes job.delivered twice: harmless, the projection is idempotent.
          await this.ledger.markAnnounced(record.jobId);
        }
      }
      await this.releaseResults(record.jobId, outputs);
    } finally {
      await this.ledger.unlock(record.jobId, holder).catch(() => undefined);
    }
  }

  /**
   * An image store outage is ridden out here, with backoff, while the heartbeat keeps the entry ours: failing
   * the handler instead would spend the entry's MAX_DELIVERIES on the outage and park a good picture in the DLQ.
   */
  private async readResult(jobId: string, hash: string, signal: AbortSignal): Promise<Buffer | null> {
    const deadline = Date.now() + BLOB_OUTAGE_PATIENCE_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.blobs.get(hash);
      } catch (err) {
        if (!(err instanceof BlobStoreUnavailableError) || Date.now() > deadline) throw err;
        const delay = Math.min(1_000 * 2 ** attempt, 30_000);
        this.log.warn({ jobId, err: err.message, retryInMs: delay }, 'image store unavailable; delivery waits');
        await sleep(delay, signal);
        if (signal.aborted) throw new RetryLaterError('shutting down while the image store is unavailable');
      }
    }
  }

  /**
   * The picture is in the chat (or can never get there): our copy goes now rather than at BLOB_TTL_SECONDS.
   * A Telegram job's id is never given to an API caller, so none could still fetch it. A failed release leaves
   * the hold to expire.
   */
  private async releaseResults(jobId: string, outputs: readonly BlobRef[]): Promise<void> {
    for (const ref of outputs) {
      await this.blobs.release(ref.hash, blobHolders.result(jobId)).catch((err: unknown) => {
        this.log.warn({ jobId, err: (err as Error).message }, 'result blob release failed; it expires instead');
      });
    }
  }

  /** Returns the first result message id, or undefined when the job turned out undeliverable. */
  private async sendAll(
    record: BotJobRecord,
    outputs: readonly BlobRef[],
    signal: AbortSignal,
  ): Promise<number | undefined> {
    const entry = await this.ledger.get(record.jobId);
    if (entry.undeliverable) return undefined;
    if (await this.blocklist.isBlocked(record.chatId)) {
      await this.ledger.markUndeliverable(record.jobId, 'chat blocked the bot');
      return undefined;
    }
    let first: number | undefined;
    for (const [index, ref] of outputs.entries()) {
      const done = entry.outputs.get(index);
      if (done?.state === 'sent' && done.messageId !== undefined) {
        first ??= done.messageId;
        continue;
      }
      if (done?.state === 'sending') {
        this.log.warn(
          { jobId: record.jobId, index },
          'a previous delivery died inside the Bot API call; sending again (the chat may get this image twice)',
        );
      } else if (done?.state === 'unanswered') {
        this.log.warn(
          { jobId: record.jobId, index },
          'Telegram did not answer the previous send of this image; sending again (the chat may get it twice)',
        );
      }
      const messageId = await this.sendOne(record, ref, index, index === outputs.length - 1, signal);
      if (messageId === undefined) return undefined;
      first ??= messageId;
    }
    return first;
  }

  private async sendOne(
    record: BotJobRecord,
    ref: BlobRef,
    index: number,
    last: boolean,
    signal: AbortSignal,
  ): Promise<number | undefined> {
    const bytes = await this.readResult(record.jobId, ref.hash, signal);
    if (!bytes) {
      await this.gateway
        .sendMessage(
          record.chatId,
          texts(record.lang).resultExpired,
          { replyTo: record.replyTo },
          { budget: 'mandatory', jobId: record.jobId },
        )
        .catch(() => undefined);
      await this.ledger.markUndeliverable(record.jobId, 'result blob expired');
      return undefined;
    }
    if (signal.aborted) throw new RetryLaterError('shutting down before sending');
    await this.ledger.markSending(record.jobId, index);
    try {
      const messageId = await this.upload(record, bytes, ref, index, last, signal);
      await this.ledger.markSent(record.jobId, index, messageId);
      return messageId;
    } catch (err) {
      if (!(err instanceof TelegramCallError)) throw err;
      // Refused calls were already retried (TelegramGateway); what is left goes back to the stream.
      if (err.definite) await this.ledger.markFailed(record.jobId, index);
      else await this.ledger.markUnanswered(record.jobId, index);
      if (err.kind === 'unreachable') {
        await this.ledger.markUndeliverable(record.jobId, err.message);
        await this.unreachable.handle(record.chatId);
        this.log.info({ jobId: record.jobId, chatId: record.chatId }, 'result undeliverable: chat blocked the bot');
        return undefined;
      }
      if (err.kind === 'bad-request' || err.kind === 'unauthorized') {
        await this.ledger.markUndeliverable(record.jobId, err.message);
        this.log.warn({ jobId: record.jobId, err: err.message }, 'result undeliverable: Telegram refused it');
        return undefined;
      }
      throw new RetryLaterError(err.message, { cause: err });
    }
  }

  /** As a photo when Telegram's photo limits allow, else (or when it refuses the photo) as a document. */
  private async upload(
    record: BotJobRecord,
    bytes: Buffer,
    ref: BlobRef,
    index: number,
    last: boolean,
    signal: AbortSignal,
  ): Promise<number> {
    const t = texts(record.lang);
    const caption = t.resultCaption(record.prompt).slice(0, CAPTION_LIMIT);
    const keyboard = last
      ? {
          inline_keyboard: [
            [{ text: t.buttonRegenerate, callback_data: this.signer.sign('regenerate', record.jobId, record.userId) }],
          ],
        }
      : undefined;
    const filename = `${record.jobId.slice(0, 8)}-${index + 1}.${EXTENSIONS[ref.type] ?? 'png'}`;
    const extra = { replyTo: record.replyTo, keyboard };
    const options = { budget: 'mandatory' as const, deadlineMs: SEND_DEADLINE_MS, signal, jobId: record.jobId };
    if (fitsAsPhoto(bytes)) {
      try {
        return (await this.gateway.sendPhoto(record.chatId, bytes, filename, caption, extra, options)).message_id;
      } catch (err) {
        // Telegram judged the photo differently (dimensions, processing): the same bytes go as a file.
        if (!(err instanceof TelegramCallError) || err.kind !== 'bad-request') throw err;
        this.log.info({ jobId: record.jobId, err: err.message }, 'photo refused; sending as a document');
      }
    }
    return (await this.gateway.sendDocument(record.chatId, bytes, filename, caption, extra, options)).message_id;
  }
}
