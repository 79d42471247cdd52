import { Inject } from '@nestjs/common';
import { Command, Ctx, Help, On, Start, Update } from 'nestjs-telegraf';
import type { Context } from 'telegraf';
import type { CallbackQuery } from 'telegraf/types';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { AdminCommandsService } from '../admin/admin-commands.service';
import { ChatUnreachableHandler } from '../delivery/chat-unreachable.handler';
import { pickLang, texts } from '../i18n';
import { SETTINGS_PREFIX } from '../settings/settings-callback';
import { UserSettingsStore } from '../settings/user-settings.store';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { SecretScrubber } from '../telegram/secret-scrubber';
import { isGroupChat, textForBot } from './group-addressing.util';
import type { Inbound } from './inbound';
import { JobButtonsService } from './job-buttons.service';
import { PromptIntakeService } from './prompt-intake.service';
import { ReplySenderService } from './reply-sender.service';
import { UserCommandsService } from './user-commands.service';

type CallbackMessage = NonNullable<CallbackQuery['message']>;

/**
 * Maps Telegram updates to the services. Order matters (nestjs-telegraf registers in method order): commands
 * first, then plain text (where an unknown /command ends up), photos, files, buttons, and last every other
 * message kind. Handlers only touch Redis and return; replies go out in the background (see ReplySenderService).
 * In groups the bot answers commands, mentions of its @username and replies to its messages, and ignores the
 * rest of the conversation (textForBot).
 */
@Update()
export class BotUpdate {
  private readonly admins: ReadonlySet<number>;

  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly scrubber: SecretScrubber,
    private readonly settings: UserSettingsStore,
    private readonly blocklist: ChatBlocklistStore,
    private readonly unreachable: ChatUnreachableHandler,
    private readonly intake: PromptIntakeService,
    private readonly commands: UserCommandsService,
    private readonly admin: AdminCommandsService,
    private readonly buttons: JobButtonsService,
    private readonly replies: ReplySenderService,
  ) {
    this.admins = new Set(config.telegram.adminIds);
  }

  @Start()
  start(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.commands.help(from));
  }

  @Help()
  help(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.commands.help(from));
  }

  @Command('status')
  status(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.commands.status(from));
  }

  @Command('cancel')
  cancel(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.commands.cancelAll(from));
  }

  @Command('settings')
  settingsCommand(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.commands.settingsCommand(from, commandArgs(ctx)));
  }

  @Command('stats')
  stats(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.admin.run(from, 'stats', []));
  }

  @Command('dlq')
  dlq(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.admin.run(from, 'dlq', []));
  }

  @Command('redrive')
  redrive(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.admin.run(from, 'redrive', commandArgs(ctx)));
  }

  @Command('drain')
  drain(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, (from) => this.admin.run(from, 'drain', commandArgs(ctx)));
  }

  @On('text')
  text(@Ctx() ctx: Context): Promise<void> {
    const message = ctx.message;
    if (!message || !('text' in message)) return Promise.resolve();
    if (message.text.startsWith('/')) {
      const [command = message.text, addressee] = (message.text.split(/\s/)[0] ?? message.text).split('@');
      // "/cmd@other_bot" is for another bot; in a group, so may be a bare /cmd we don't know: not ours to refuse.
      const forUs = addressee
        ? addressee.toLowerCase() === ctx.botInfo.username.toLowerCase()
        : !isGroupChat(message.chat.type);
      if (!forUs) return Promise.resolve();
      return this.handle(ctx, (from) => this.replies.reply(from, texts(from.lang).unknownCommand(command)));
    }
    const prompt = textForBot(message, ctx.botInfo);
    if (prompt === undefined) return Promise.resolve();
    return this.handle(ctx, (from) => this.intake.text(from, prompt));
  }

  @On('photo')
  photo(@Ctx() ctx: Context): Promise<void> {
    const message = ctx.message;
    if (!message || !('photo' in message)) return Promise.resolve();
    const caption = textForBot(message, ctx.botInfo);
    if (caption === undefined) return Promise.resolve();
    return this.handle(ctx, async (from) => {
      // Sizes come smallest first; take the largest by area.
      const largest = [...message.photo].sort((a, b) => b.width * b.height - a.width * a.height)[0];
      if (!largest) return;
      await this.intake.photo(from, { fileId: largest.file_id, fileSize: largest.file_size, caption });
    });
  }

  @On('document')
  document(@Ctx() ctx: Context): Promise<void> {
    const message = ctx.message;
    if (!message || !('document' in message)) return Promise.resolve();
    const caption = textForBot(message, ctx.botInfo);
    if (caption === undefined) return Promise.resolve();
    return this.handle(ctx, async (from) => {
      const { document } = message;
      // The declared type only filters obvious non-images; the bytes decide (PhotoDownloadService sniffs them).
      if (document.mime_type && !document.mime_type.startsWith('image/')) {
        this.replies.reply(from, texts(from.lang).notAnImage);
        return;
      }
      await this.intake.photo(from, { fileId: document.file_id, fileSize: document.file_size, caption });
    });
  }

  @On('callback_query')
  callback(@Ctx() ctx: Context): Promise<void> {
    return this.handle(ctx, async (from) => {
      const query = ctx.callbackQuery;
      if (!query) return;
      const data = 'data' in query ? query.data : '';
      if (data.startsWith(SETTINGS_PREFIX)) {
        await this.commands.settingsButton(from, query.id, data, pressedPanel(query.message, data));
        return;
      }
      await this.buttons.press(from, query.id, data);
    });
  }

  /** Telegram tells the bot when a user blocks (kicked) or unblocks (member) it: stop or resume that chat. */
  @On('my_chat_member')
  async membership(@Ctx() ctx: Context): Promise<void> {
    const change = ctx.myChatMember;
    if (!change) return;
    const status = change.new_chat_member.status;
    try {
      if (status === 'kicked' || status === 'left') await this.unreachable.handle(change.chat.id);
      else await this.blocklist.clear(change.chat.id);
    } catch (err) {
      this.log.warn({ chatId: change.chat.id, err: this.scrubber.scrub(String(err)) }, 'membership update failed');
    }
  }

  @On('message')
  other(@Ctx() ctx: Context): Promise<void> {
    // In a group, a sticker or voice message is for the bot only when it answers one of the bot's messages.
    if (ctx.message && textForBot(ctx.message, ctx.botInfo) === undefined) return Promise.resolve();
    return this.handle(ctx, (from) => this.replies.reply(from, texts(from.lang).unsupportedMessage));
  }

  /** Builds the Inbound, and turns any unexpected failure into a log line (scrubbed) and an apology. */
  private async handle(ctx: Context, work: (from: Inbound) => void | Promise<void>): Promise<void> {
    const from = await this.inbound(ctx);
    if (!from) {
      // A press with no chat (an inline-message button, or a forged update) can't be checked against its job: refuse
      // it, but still answer, or the client's spinner never stops.
      if (ctx.callbackQuery) {
        await ctx.answerCbQuery(texts(pickLang(undefined, ctx.from?.language_code)).notYourJob).catch(() => undefined);
      }
      return;
    }
    try {
      await this.blocklist.clear(from.chatId);
      await work(from);
    } catch (err) {
      const message = this.scrubber.scrub(err instanceof Error ? err.message : String(err));
      this.log.error({ updateId: from.updateId, chatId: from.chatId, err: message }, 'update handling failed');
      if (ctx.callbackQuery) return; // JobButtonsService answers presses itself
      this.replies.reply(from, texts(from.lang).internalError);
    }
  }

  private async inbound(ctx: Context): Promise<Inbound | undefined> {
    const user = ctx.from;
    const chat = ctx.chat ?? (ctx.callbackQuery?.message ? ctx.callbackQuery.message.chat : undefined);
    if (!user || !chat) return undefined;
    const chosen = await this.settings.get(user.id);
    const message = ctx.callbackQuery ? ctx.callbackQuery.message : ctx.message;
    return {
      updateId: ctx.update.update_id,
      chatId: chat.id,
      userId: user.id,
      messageId: ctx.callbackQuery ? undefined : message?.message_id,
      languageCode: user.language_code,
      lang: pickLang(chosen.lang, user.language_code),
      isAdmin: this.admins.has(user.id),
    };
  }
}

/**
 * The id of the message pressed when it is a settings panel: Telegram sends the message with its keyboard, and a
 * real press carries the data of one of its buttons. Data that is not on the message (hand-made, or pressed on a
 * status message) or a message too old to be shown to the bot gives undefined.
 */
function pressedPanel(message: CallbackMessage | undefined, data: string): number | undefined {
  if (!message || !('reply_markup' in message) || !message.reply_markup) return undefined;
  const buttons = message.reply_markup.inline_keyboard.flat();
  return buttons.some((b) => 'callback_data' in b && b.callback_data === data) ? message.message_id : undefined;
}

function commandArgs(ctx: Context): string[] {
  const text = ctx.message && 'text' in ctx.message ? ctx.message.text : '';
  return text
    .split(/\s+/)
    .slice(1)
    .filter((a) => a.length > 0);
}
