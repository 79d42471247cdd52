import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { BLOB_STORE, type BlobStore } from '../../../blobs/blob-store';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { WorkflowCatalog } from '../../../workflows';
import { codePointLength } from '../../../workflows/input-rules.util';
import { texts, type Messages } from '../i18n';
import { UserSettingsStore } from '../settings/user-settings.store';
import { BotJobStore, type BotJobRecord } from '../status/bot-job.store';
import { StatusRefresherService } from '../status/status-refresher.service';
import type { Inbound } from './inbound';
import { PhotoDownloadService } from './photo-download.service';
import { ReplySenderService } from './reply-sender.service';
import {
  DrainingError,
  GenerationService,
  IdempotencyConflictError,
  InvalidRequestError,
  NoCapableInstanceError,
  ReplicasUnconfirmedJobError,
  ServiceOverloadedError,
  UserLimitError,
} from '../../generation';

export const TEXT_WORKFLOW = 'txt2img';
export const EDIT_WORKFLOW = 'edit';

export interface PhotoInput {
  fileId: string;
  fileSize?: number;
  caption?: string;
}

type SubmitOutcome = { ok: true; jobId: string } | { ok: false; message?: string };

interface Remembered {
  prompt: string;
  width?: number;
  height?: number;
  imageHash?: string;
  imageFileId?: string;
}

/**
 * Turns a prompt (text → txt2img, captioned photo → edit, Regenerate → the same again with a new seed) into a
 * job. The update's id is the idempotency key (scope `tg:<chat>`), so a webhook retry or a second replica
 * handling the same update finds the same job and shows no second status message.
 */
@Injectable()
export class PromptIntakeService {
  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly catalog: WorkflowCatalog,
    private readonly generations: GenerationService,
    private readonly settings: UserSettingsStore,
    private readonly store: BotJobStore,
    private readonly refresher: StatusRefresherService,
    private readonly downloads: PhotoDownloadService,
    private readonly replies: ReplySenderService,
  ) {}

  async text(from: Inbound, text: string): Promise<void> {
    const t = texts(from.lang);
    const prompt = text.trim();
    const refusal = this.checkPrompt(t, prompt, TEXT_WORKFLOW);
    if (refusal) {
      this.replies.reply(from, refusal);
      return;
    }
    const { size } = await this.settings.get(from.userId);
    const inputs = { prompt, ...(size ? { width: size, height: size } : {}) };
    const outcome = await this.submit(from, TEXT_WORKFLOW, inputs, { prompt, width: size, height: size });
    if (!outcome.ok && outcome.message) this.replies.reply(from, outcome.message);
  }

  async photo(from: Inbound, photo: PhotoInput): Promise<void> {
    const t = texts(from.lang);
    if (!this.catalog.get(EDIT_WORKFLOW)) {
      this.replies.reply(from, t.editUnavailable);
      return;
    }
    const prompt = (photo.caption ?? '').trim();
    if (!prompt) {
      this.replies.reply(from, t.captionNeeded);
      return;
    }
    const refusal = this.checkPrompt(t, prompt, EDIT_WORKFLOW);
    if (refusal) {
      this.replies.reply(from, refusal);
      return;
    }
    const image = await this.downloads.fetch(photo.fileId, photo.fileSize);
    if (!image.ok) {
      const message =
        image.reason === 'too-large'
          ? t.photoTooLarge(Math.floor(image.limit / (1024 * 1024)))
          : image.reason === 'not-an-image'
            ? t.notAnImage
            : t.downloadFailed;
      this.replies.reply(from, message);
      return;
    }
    const imageHash = createHash('sha256').update(image.bytes).digest('hex');
    const inputs = { prompt, image: image.bytes.toString('base64') };
    const outcome = await this.submit(from, EDIT_WORKFLOW, inputs, { prompt, imageHash, imageFileId: photo.fileId });
    if (!outcome.ok && outcome.message) this.replies.reply(from, outcome.message);
  }

  /** A Regenerate press: the same request with a new seed. Returns the text for the button's answer. */
  async regenerate(from: Inbound, original: BotJobRecord): Promise<string> {
    const t = texts(from.lang);
    // Derived from the press, not random: a redelivered press must make the same request to find the same job.
    const seed = Number(
      createHash('sha256').update(`${original.jobId}:${from.updateId}`).digest().readBigUInt64BE() >> 11n,
    );
    let inputs: Record<string, unknown>;
    if (original.workflow === EDIT_WORKFLOW) {
      const bytes = await this.originalImage(original);
      if (!bytes) return t.buttonExpired;
      inputs = { prompt: original.prompt, image: bytes.toString('base64'), seed };
    } else {
      const size = original.width !== undefined ? { width: original.width, height: original.height } : {};
      inputs = { prompt: original.prompt, ...size, seed };
    }
    const remembered = {
      prompt: original.prompt,
      width: original.width,
      height: original.height,
      imageHash: original.imageHash,
      imageFileId: original.imageFileId,
    };
    const outcome = await this.submit(from, original.workflow, inputs, remembered);
    return outcome.ok ? t.regenerating : (outcome.message ?? t.regenerating);
  }

  /** The photo of an edit job, fetched again from Telegram (our copy went with the job). */
  private async originalImage(original: BotJobRecord): Promise<Buffer | null> {
    if (original.imageFileId) {
      const image = await this.downloads.fetch(original.imageFileId, undefined);
      return image.ok ? image.bytes : null;
    }
    return original.imageHash ? this.blobs.get(original.imageHash) : null;
  }

  private checkPrompt(t: Messages, prompt: string, workflow: string): string | undefined {
    if (!prompt) return t.promptEmpty;
    const spec = this.catalog.get(workflow)?.inputs.prompt;
    const templateMax = spec?.type === 'string' && spec.maxLength !== undefined ? spec.maxLength : Infinity;
    const max = Math.min(this.config.maxPromptLength, templateMax);
    const length = codePointLength(prompt);
    return length > max ? t.promptTooLong(length, max) : undefined;
  }

  private async submit(
    from: Inbound,
    workflow: string,
    inputs: Record<string, unknown>,
    remembered: Remembered,
  ): Promise<SubmitOutcome> {
    const t = texts(from.lang);
    let jobId: string;
    try {
      const result = await this.generations.submit({
        workflow,
        inputs,
        userId: `tg:${from.userId}`,
        source: 'telegram',
        // TELEGRAM_PRIORITY_USER_IDS get the priority tier; everyone else never does.
        ...(this.config.telegram.priorityUserIds.includes(from.userId) ? { priority: true } : {}),
        idempotency: { scope: `tg:${from.chatId}`, key: String(from.updateId) },
        telegram: {
          chatId: from.chatId,
          userId: from.userId,
          updateId: from.updateId,
          ...(from.messageId !== undefined ? { messageId: from.messageId } : {}),
          ...(from.languageCode ? { language: from.languageCode } : {}),
        },
      });
      jobId = result.id;
    } catch (err) {
      if (err instanceof UserLimitError) return { ok: false, message: t.userLimit(err.active, err.limit) };
      if (err instanceof DrainingError) return { ok: false, message: t.draining };
      if (err instanceof ServiceOverloadedError) return { ok: false, message: t.overloaded };
      if (err instanceof ReplicasUnconfirmedJobError) return { ok: false, message: t.notAcceptedNow };
      if (err instanceof NoCapableInstanceError) {
        // What is missing, without where: instance ids are the operator's business, not the chat's.
        const missing = err.missing.map((m) => m.what).join('; ');
        return { ok: false, message: t.noCapableInstance(missing) };
      }
      if (err instanceof InvalidRequestError) {
        return { ok: false, message: t.invalidInput(err.fields.map((f) => f.message).join('; ')) };
      }
      // The same update came back with different content (settings changed in between): the first one stands.
      if (err instanceof IdempotencyConflictError) return { ok: false };
      throw err;
    }
    await this.store.register({
      jobId,
      chatId: from.chatId,
      userId: from.userId,
      lang: from.lang,
      replyTo: from.messageId,
      workflow,
      prompt: remembered.prompt.slice(0, 1000),
      width: remembered.width,
      height: remembered.height,
      imageHash: remembered.imageHash,
      imageFileId: remembered.imageFileId,
      createdAt: Date.now(),
    });
    // Whether this call created the record or found it (a duplicate update), the refresher shows the status
    // message if it is still missing — e.g. the first handler died right after submitting.
    this.refresher.kick(jobId);
    this.log.info({ jobId, chatId: from.chatId, workflow, updateId: from.updateId }, 'telegram job submitted');
    return { ok: true, jobId };
  }
}
