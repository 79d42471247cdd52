import { Injectable } from '@nestjs/common';
import type { InlineKeyboardMarkup } from 'telegraf/types';
import { WorkflowCatalog } from '../../../workflows';
import { codePointLength } from '../../../workflows/input-rules.util';
import { isLang, LANG_NAMES, LANGS, texts, type Lang } from '../i18n';
import { langCallback, parseSettingsCallback, sizeCallback } from '../settings/settings-callback';
import { PICTURE_SIZES, UserSettingsStore } from '../settings/user-settings.store';
import { BotJobStore } from '../status/bot-job.store';
import { JobStateReader, type LiveJobState } from '../status/job-state.reader';
import { renderLive } from '../status/status.renderer';
import { StatusRefresherService } from '../status/status-refresher.service';
import { TelegramGateway } from '../telegram/telegram-gateway';
import type { Inbound } from './inbound';
import { ReplySenderService } from './reply-sender.service';
import { TEXT_WORKFLOW } from './prompt-intake.service';
import { GenerationService, JobFinishedError, JobLedger, JobNotFoundError } from '../../generation';

const STATUS_PROMPT_CHARS = 40;

/** /start, /help, /status, /cancel, /settings and the settings buttons (`s:l:<lang>`, `s:z:<size>`). */
@Injectable()
export class UserCommandsService {
  constructor(
    private readonly ledger: JobLedger,
    private readonly catalog: WorkflowCatalog,
    private readonly generations: GenerationService,
    private readonly settings: UserSettingsStore,
    private readonly store: BotJobStore,
    private readonly reader: JobStateReader,
    private readonly refresher: StatusRefresherService,
    private readonly gateway: TelegramGateway,
    private readonly replies: ReplySenderService,
  ) {}

  help(from: Inbound): void {
    this.replies.reply(from, texts(from.lang).help(from.isAdmin));
  }

  async status(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    const entries: StatusEntry[] = [];
    for (const jobId of await this.activeJobs(from.userId)) {
      const record = await this.store.get(jobId);
      const state = await this.reader.read(jobId, record?.cancelRequested === true);
      // The active set heals lazily: a job that has just ended may still be in it.
      if (state.kind === 'final') continue;
      entries.push({ jobId, prompt: record?.prompt ?? '', createdAt: record?.createdAt ?? 0, state });
    }
    const lines = entries.sort(byQueueOrder).map((entry, index) => {
      const prompt = truncate(entry.prompt || entry.jobId, STATUS_PROMPT_CHARS);
      return t.statusLine(index + 1, prompt, renderLive(from.lang, entry.state, 'unused').text);
    });
    this.replies.reply(from, lines.length === 0 ? t.statusNone : [t.statusHeader(lines.length), ...lines].join('\n'));
  }

  async cancelAll(from: Inbound): Promise<void> {
    const t = texts(from.lang);
    let cancelled = 0;
    for (const jobId of await this.activeJobs(from.userId)) {
      try {
        await this.generations.cancel(jobId, `tg:${from.userId}`);
        await this.store.markCancelRequested(jobId);
        this.refresher.kick(jobId);
        cancelled++;
      } catch (err) {
        if (!(err instanceof JobFinishedError) && !(err instanceof JobNotFoundError)) throw err;
      }
    }
    this.replies.reply(from, cancelled > 0 ? t.cancelCommandDone(cancelled) : t.nothingToCancel);
  }

  /** `/settings` shows the choices; `/settings lang ru` and `/settings size 768` set them directly. */
  async settingsCommand(from: Inbound, args: readonly string[]): Promise<void> {
    const [what, value] = args.map((a) => a.toLowerCase());
    if (what === undefined) {
      await this.showSettings(from);
      return;
    }
    if (what === 'lang' && isLang(value)) {
      await this.settings.setLang(from.userId, value);
      await this.showSettings({ ...from, lang: value });
      return;
    }
    if (what === 'size' && value !== undefined && (value === 'default' || PICTURE_SIZES.includes(Number(value)))) {
      await this.settings.setSize(from.userId, value === 'default' ? 0 : Number(value));
      await this.showSettings(from);
      return;
    }
    this.replies.reply(from, texts(from.lang).settingsUsage);
  }

  /**
   * A settings button: applies to the presser's own settings, so it needs no signature. Only data our panels carry
   * counts, and only the panel itself is redrawn (`panelMessageId` is set when the pressed message is one): hand-made
   * data pressed on any other message — a job's status message — changes nothing there.
   */
  async settingsButton(
    from: Inbound,
    callbackQueryId: string,
    data: string,
    panelMessageId: number | undefined,
  ): Promise<void> {
    const choice = parseSettingsCallback(data);
    if (!choice || panelMessageId === undefined) {
      await this.gateway.answerCallback(callbackQueryId, texts(from.lang).buttonExpired, true);
      return;
    }
    let lang = from.lang;
    if (choice.kind === 'lang') {
      await this.settings.setLang(from.userId, choice.lang);
      lang = choice.lang;
    } else {
      await this.settings.setSize(from.userId, choice.size);
    }
    await this.gateway.answerCallback(callbackQueryId, texts(lang).settingsSaved);
    const view = await this.settingsView({ ...from, lang });
    this.replies.edit(from.chatId, panelMessageId, view.text, view.keyboard);
  }

  private async showSettings(from: Inbound): Promise<void> {
    const view = await this.settingsView(from);
    this.replies.reply(from, view.text, view.keyboard);
  }

  private async settingsView(from: Inbound): Promise<{ text: string; keyboard: InlineKeyboardMarkup }> {
    const t = texts(from.lang);
    const { size } = await this.settings.get(from.userId);
    const spec = this.catalog.get(TEXT_WORKFLOW)?.inputs.width;
    const defaultSize = spec?.type === 'integer' && typeof spec.default === 'number' ? spec.default : 1024;
    const sizeText = size ? `${size}×${size}` : t.settingsDefaultSize(defaultSize);
    const mark = (on: boolean, text: string): string => (on ? `• ${text}` : text);
    return {
      text: t.settings(LANG_NAMES[from.lang], sizeText),
      keyboard: {
        inline_keyboard: [
          LANGS.map((l: Lang) => ({ text: mark(l === from.lang, LANG_NAMES[l]), callback_data: langCallback(l) })),
          [
            ...PICTURE_SIZES.map((s) => ({ text: mark(s === size, String(s)), callback_data: sizeCallback(s) })),
            // The same word as the panel's text ("default (1024×1024)"), in the user's language.
            { text: mark(!size, t.settingsDefaultButton), callback_data: sizeCallback(0) },
          ],
        ],
      },
    };
  }

  private async activeJobs(userId: number): Promise<string[]> {
    return this.ledger.activeJobs(`tg:${userId}`);
  }
}

interface StatusEntry {
  jobId: string;
  prompt: string;
  createdAt: number;
  state: Exclude<LiveJobState, { kind: 'final' }>;
}

/** /status lists jobs the way the queue serves them: those already on a GPU first, then by queue position. */
function byQueueOrder(a: StatusEntry, b: StatusEntry): number {
  const place = (e: StatusEntry) => (e.state.kind === 'queued' ? e.state.position : 0);
  return place(a) - place(b) || a.createdAt - b.createdAt;
}

function truncate(text: string, max: number): string {
  if (codePointLength(text) <= max) return text;
  let out = '';
  let count = 0;
  for (const char of text) {
    if (++count >= max) break;
    out += char;
  }
  return `${out}…`;
}
