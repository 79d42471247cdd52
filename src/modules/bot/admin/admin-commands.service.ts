import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { pickLang, texts } from '../i18n';
import { UserSettingsStore } from '../settings/user-settings.store';
import { BotJobStore } from '../status/bot-job.store';
import { StatusRefresherService } from '../status/status-refresher.service';
import type { Inbound } from '../updates/inbound';
import { ReplySenderService } from '../updates/reply-sender.service';
import { DlqService, DrainService, RedriveError, requestOf, StreamStatsReader } from '../../operations';

const DLQ_SHOWN = 10;
const REASON_CHARS = 160;

/** /stats, /dlq, /redrive <id>, /drain [off] — for TELEGRAM_ADMIN_IDS only; everyone else is told "not allowed". */
@Injectable()
export class AdminCommandsService {
  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly stats: StreamStatsReader,
    private readonly dlqs: DlqService,
    private readonly drains: DrainService,
    private readonly store: BotJobStore,
    private readonly settings: UserSettingsStore,
    private readonly refresher: StatusRefresherService,
    private readonly replies: ReplySenderService,
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
        return this.statsReply(from);
      case 'dlq':
        return this.dlq(from);
      case 'redrive':
        return this.redrive(from, args);
      case 'drain':
        return this.drain(from, args[0]);
    }
  }

  /** The operators' figures as `cli stats`, /metrics and /health read them (StreamStatsReader), in a few lines. */
  private async statsReply(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    const s = await this.stats.snapshot();
    const groupLines = s.streams.flatMap((stream) =>
      stream.groups.map((g) => t.statsGroup(g.group, stream.name, g.lag === null ? '?' : String(g.lag), g.pending)),
    );
    this.replies.reply(
      from,
      t.stats({
        queue: s.queueLength,
        groups: groupLines.join('\n'),
        workers: s.capacity.workers,
        instances: s.capacity.instances,
        slots: s.capacity.slots,
        dlq: s.dlqSize,
        draining: s.draining,
      }),
    );
  }

  private async dlq(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    const [total, items] = await Promise.all([this.dlqs.size(), this.dlqs.list({ limit: DLQ_SHOWN })]);
    if (items.length === 0) {
      this.replies.reply(from, t.dlqEmpty);
      return;
    }
    const lines = items.map((d) => {
      const reason = d.reason.length > REASON_CHARS ? `${d.reason.slice(0, REASON_CHARS - 1)}…` : d.reason;
      const line = t.dlqLine(d.id, d.type ?? '?', d.jobId ?? '?', reason);
      return d.redrivenAs ? `${line}\n  → ${d.redrivenAs}` : line;
    });
    this.replies.reply(from, [t.dlqHeader(total), ...lines].join('\n'));
  }

  /** The CLI's re-drive (`cli dlq redrive`): the entry stays as the record, an audit goes with the new job, once. */
  private async redrive(from: Inbound, args: readonly string[]): Promise<void> {
    const t = texts(from.lang);
    const dlqId = args[0];
    if (!dlqId) {
      this.replies.reply(from, t.redriveUsage);
      return;
    }
    const reason = args.slice(1).join(' ').trim() || 're-driven from Telegram';
    let result;
    try {
      result = await this.dlqs.redrive(dlqId, { by: `tg-admin:${from.userId}`, reason });
    } catch (err) {
      if (!(err instanceof RedriveError)) throw err;
      if (err.problem === 'not_found') this.replies.reply(from, t.redriveNotFound(dlqId));
      else if (err.problem === 'already_redriven')
        this.replies.reply(from, t.redriveAlready(dlqId, err.redrivenAs ?? '?'));
      else if (err.problem === 'inputs_expired') this.replies.reply(from, t.redriveInputsExpired(dlqId));
      else this.replies.reply(from, t.redriveRefused(dlqId, err.message.slice(dlqId.length + 2)));
      return;
    }
    // A Telegram job gets its status message back in its own chat.
    const item = await this.dlqs.get(dlqId);
    const request = item ? requestOf(item) : undefined;
    const origin = request?.payload.telegram;
    if (request && origin) {
      const prompt = request.payload.inputs.prompt;
      await this.store.register({
        jobId: result.jobId,
        chatId: origin.chatId,
        userId: origin.userId,
        lang: pickLang((await this.settings.get(origin.userId)).lang, origin.language),
        replyTo: origin.messageId,
        workflow: request.payload.workflow,
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
      await this.drains.off();
      this.replies.reply(from, t.drainOff);
      return;
    }
    await this.drains.on(`tg-admin:${from.userId}`);
    this.replies.reply(from, t.drainOn);
  }
}
