import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { BOT_JOB_FINISH, BOT_JOB_REGISTER } from '../../../redis/scripts';
import { REDIS } from '../../../streams/redis.provider';
import { BotKeys } from '../bot-keys';
import { isLang, type Lang } from '../i18n';
import { RedisLease } from './redis-lease';

export type BotJobPhase = 'live' | 'done' | 'failed' | 'cancelled';

/** The Telegram side of one job: where it came from, what was asked, and its status message. */
export interface BotJobRecord {
  jobId: string;
  chatId: number;
  userId: number;
  lang: Lang;
  /** The user's message the status message and the result reply to. */
  replyTo?: number;
  workflow: string;
  prompt: string;
  width?: number;
  height?: number;
  /**
   * Telegram's file_id of the photo (edit jobs): Regenerate downloads it again from Telegram, which keeps files,
   * so our blob store need not keep the input after the job ends.
   */
  imageFileId?: string;
  /** Content hash of the photo; records made before imageFileId existed fall back to the blob while it lives. */
  imageHash?: string;
  statusMessageId?: number;
  /** Digest of the last text + buttons shown, so unchanged states are never re-sent. */
  rendered?: string;
  editedAt?: number;
  phase: BotJobPhase;
  cancelRequested?: boolean;
  createdAt: number;
}

export type NewBotJob = Omit<BotJobRecord, 'phase' | 'statusMessageId' | 'rendered' | 'editedAt' | 'cancelRequested'>;

/** Regenerate buttons keep working as long as the record lives. */
const RECORD_TTL_SECONDS = 7 * 24 * 3600;

/**
 * The bot's jobs: each one's record (`bot:job:<id>`), the live set the refresher walks, and the two leases on a job
 * — who refreshes its status message (sticky owner) and who edits it right now (mutex).
 */
@Injectable()
export class BotJobStore {
  /** This process's refresh-owner token: taking a job again renews it, another replica waits for it to lapse. */
  private readonly refreshOwner: RedisLease;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: BotKeys,
  ) {
    this.refreshOwner = new RedisLease(redis);
  }

  /** True when this call created the record (the caller then owns showing its status message). */
  async register(job: NewBotJob): Promise<boolean> {
    const fields: Record<string, string> = {
      chatId: String(job.chatId),
      userId: String(job.userId),
      lang: job.lang,
      workflow: job.workflow,
      prompt: job.prompt,
      phase: 'live',
      createdAt: String(job.createdAt),
    };
    if (job.replyTo !== undefined) fields.replyTo = String(job.replyTo);
    if (job.width !== undefined) fields.width = String(job.width);
    if (job.height !== undefined) fields.height = String(job.height);
    if (job.imageHash !== undefined) fields.imageHash = job.imageHash;
    if (job.imageFileId !== undefined) fields.imageFileId = job.imageFileId;
    const created = await BOT_JOB_REGISTER.run(
      this.redis,
      [this.keys.job(job.jobId), this.keys.live],
      [job.jobId, String(RECORD_TTL_SECONDS), String(job.createdAt), ...Object.entries(fields).flat()],
    );
    return created === 1;
  }

  async get(jobId: string): Promise<BotJobRecord | undefined> {
    return toRecord(jobId, await this.redis.hgetall(this.keys.job(jobId)));
  }

  async setStatusMessage(jobId: string, messageId: number, rendered: string): Promise<void> {
    await this.redis.hset(this.keys.job(jobId), {
      statusMessageId: String(messageId),
      rendered,
      editedAt: String(Date.now()),
    });
  }

  async setRendered(jobId: string, rendered: string): Promise<void> {
    await this.redis.hset(this.keys.job(jobId), { rendered, editedAt: String(Date.now()) });
  }

  async markCancelRequested(jobId: string): Promise<void> {
    await this.redis.hset(this.keys.job(jobId), 'cancelRequested', '1');
  }

  /** Moves a live job to its final phase; returns the phase it had before ('' when there is no record). */
  async finish(jobId: string, phase: Exclude<BotJobPhase, 'live'>): Promise<string> {
    return String(await BOT_JOB_FINISH.run(this.redis, [this.keys.job(jobId), this.keys.live], [jobId, phase]));
  }

  /** Oldest first, bounded: the refresher walks these. */
  liveJobs(limit: number): Promise<string[]> {
    return this.redis.zrange(this.keys.live, 0, limit - 1);
  }

  async dropLive(jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.live, jobId);
  }

  /** Drops live entries registered before `before` (epoch ms): jobs whose final event never reached us. */
  async dropLiveOlderThan(before: number): Promise<void> {
    await this.redis.zremrangebyscore(this.keys.live, '-inf', before);
  }

  /** Takes or renews this process's ownership of refreshing the job's status message; false while another holds it. */
  takeRefresh(jobId: string, ttlMs: number): Promise<boolean> {
    return this.refreshOwner.take(this.keys.refreshOwner(jobId), ttlMs);
  }

  releaseRefresh(jobId: string): Promise<void> {
    return this.refreshOwner.release(this.keys.refreshOwner(jobId));
  }

  /** Runs `task` holding the job's edit mutex (see RedisLease.withMutex): one edit of its status message at a time. */
  withEditLock<T>(
    jobId: string,
    options: { ttlMs: number; waitMs: number; signal?: AbortSignal },
    task: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    return RedisLease.withMutex(this.redis, this.keys.editLock(jobId), options, task);
  }
}

function toRecord(jobId: string, hash: Record<string, string>): BotJobRecord | undefined {
  if (!hash.jobId || !hash.chatId) return undefined;
  const num = (value: string | undefined): number | undefined =>
    value === undefined || value === '' ? undefined : Number(value);
  const phase = hash.phase;
  return {
    jobId,
    chatId: Number(hash.chatId),
    userId: Number(hash.userId),
    lang: isLang(hash.lang) ? hash.lang : 'en',
    replyTo: num(hash.replyTo),
    workflow: hash.workflow ?? 'txt2img',
    prompt: hash.prompt ?? '',
    width: num(hash.width),
    height: num(hash.height),
    imageHash: hash.imageHash || undefined,
    imageFileId: hash.imageFileId || undefined,
    statusMessageId: num(hash.statusMessageId),
    rendered: hash.rendered || undefined,
    editedAt: num(hash.editedAt),
    phase: phase === 'done' || phase === 'failed' || phase === 'cancelled' ? phase : 'live',
    cancelRequested: hash.cancelRequested === '1',
    createdAt: Number(hash.createdAt ?? 0),
  };
}
