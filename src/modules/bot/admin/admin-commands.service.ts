import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { parseDlqEntry } from '../../../streams/dead-letter.writer';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamsHealthIndicator } from '../../health';
import { pickLang, texts } from '../i18n';
import { UserSettingsStore } from '../settings/user-settings.store';
import { BotJobStore } from '../status/bot-job.store';
import { StatusRefresher } from '../status/status-refresher.service';
import type { Inbound } from '../updates/inbound';
import { ReplySender } from '../updates/reply-sender.service';
import { DlqRedrive } from './dlq-redrive.service';
import { QueuePositionService } from '../../generation';

const DLQ_SHOWN = 10;
const REASON_CHARS = 160;

/** /stats, /dlq, /redrive <id>, /drain [off] — for TELEGRAM_ADMIN_IDS only; everyone else is told "not allowed". */
@Injectable()
export class AdminCommands {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly keys: StreamKeys,
    private readonly queue: QueuePositionService,
    private readonly streamsHealth: StreamsHealthIndicator,
    private readonly redrives: DlqRedrive,
    private readonly store: BotJobStore,
    private readonly settings: UserSettingsStore,
    private readonly refresher: StatusRefresher,
    private readonly replies: ReplySender,
  ) {}

  async run(from: Inbound, command: 'stats' | 'dlq' | 'redrive' | 'drain', args: readonly string[]): Promise<void> {
    if (!from.isAdmin) {
      this.log.info({ userId: from.userId, command }, 'admin command refused');
      this.replies.reply(from, texts(from.lang).notAllowed);
      return;
    }
    this.log.info({ userId: from.userId, command, args }, 'admin command');
    switch (command) {
      case 'stats':
        return this.stats(from);
      case 'dlq':
        return this.dlq(from);
      case 'redrive':
        return this.redrive(from, args[0]);
      case 'drain':
        return this.drain(from, args[0]);
    }
  }

  private async stats(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    const [queue, groups, dlq, draining, capacity] = await Promise.all([
      this.queue.queueLength(),
      this.streamsHealth.groups(),
      this.redis.xlen(this.keys.dlq),
      this.redis.exists(this.keys.drainFlag),
      this.queue.capacity(),
    ]);
    const groupLines = groups.map((g) =>
      t.statsGroup(g.group, g.stream, g.lag === null ? '?' : String(g.lag), g.pending),
    );
    this.replies.reply(
      from,
      t.stats({
        queue,
        groups: groupLines.join('\n'),
        workers: capacity.workers,
        instances: capacity.instances,
        slots: capacity.slots,
        dlq,
        draining: draining === 1,
      }),
    );
  }

  private async dlq(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    const [total, entries] = await Promise.all([
      this.redis.xlen(this.keys.dlq),
      this.redis.xrevrange(this.keys.dlq, '+', '-', 'COUNT', DLQ_SHOWN),
    ]);
    if (entries.length === 0) {
      this.replies.reply(from, t.dlqEmpty);
      return;
    }
    const lines = entries.map(([id, fields]) => {
      const d = parseDlqEntry(id, fields);
      const reason = d.reason.length > REASON_CHARS ? `${d.reason.slice(0, REASON_CHARS - 1)}…` : d.reason;
      return t.dlqLine(d.id, d.type ?? '?', d.jobId ?? '?', reason);
    });
    this.replies.reply(from, [t.dlqHeader(total), ...lines].join('\n'));
  }

  private async redrive(from: Inbound, dlqId: string | undefined): Promise<void> {
    const t = texts(from.lang);
    if (!dlqId) {
      this.replies.reply(from, t.redriveUsage);
      return;
    }
    const result = await this.redrives.redrive(dlqId, `tg-admin:${from.userId}`);
    if (result.kind === 'not-found') {
      this.replies.reply(from, t.redriveNotFound(dlqId));
      return;
    }
    if (result.kind === 'reappended') {
      this.replies.reply(from, t.redriveDone(dlqId, result.stream.slice(this.keys.prefix.length)));
      return;
    }
    // A Telegram job gets its status message back in its own chat.
    const origin = result.request.payload.telegram;
    if (origin) {
      const prompt = result.request.payload.inputs.prompt;
      await this.store.register({
        jobId: result.jobId,
        chatId: origin.chatId,
        userId: origin.userId,
        lang: pickLang((await this.settings.get(origin.userId)).lang, origin.language),
        replyTo: origin.messageId,
        workflow: result.request.payload.workflow,
        prompt: typeof prompt === 'string' ? prompt.slice(0, 1000) : '',
        createdAt: Date.now(),
      });
      this.refresher.kick(result.jobId);
    }
    this.replies.reply(from, t.redriveDone(dlqId, `job ${result.jobId}`));
  }

  private async drain(from: Inbound, arg: string | undefined): Promise<void> {
    const t = texts(from.lang);
    if (arg?.toLowerCase() === 'off') {
      await this.redis.del(this.keys.drainFlag);
      this.replies.reply(from, t.drainOff);
      return;
    }
    await this.redis.set(this.keys.drainFlag, `tg-admin:${from.userId} ${new Date().toISOString()}`);
    this.replies.reply(from, t.drainOn);
  }
}
