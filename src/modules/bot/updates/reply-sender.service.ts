import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { InlineKeyboardMarkup } from 'telegraf/types';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { sleep } from '../../../common/sleep.util';
import { errorMessage } from '../../../streams/stream-errors';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { TelegramCallError } from '../telegram/telegram-errors';
import { TelegramGateway } from '../telegram/telegram-gateway';
import type { Inbound } from './inbound';

const REPLY_DEADLINE_MS = 30_000;
const FLUSH_TIMEOUT_MS = 5_000;

/**
 * Answers to commands and refusals, sent in the background: an update handler never waits for the send budget
 * or a 429 pause, because telegraf's polling fetches no more updates until every handler of a batch returns (a
 * Cancel press would wait behind a help text). Pending replies get a few seconds at shutdown.
 */
@Injectable()
export class ReplySenderService implements OnModuleDestroy {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly gateway: TelegramGateway,
    private readonly blocklist: ChatBlocklistStore,
  ) {}

  reply(to: Inbound, text: string, keyboard?: InlineKeyboardMarkup): void {
    this.track(
      this.gateway
        .sendMessage(
          to.chatId,
          text,
          { replyTo: to.messageId, keyboard },
          { budget: 'mandatory', deadlineMs: REPLY_DEADLINE_MS },
        )
        .then(() => undefined),
      to.chatId,
    );
  }

  edit(chatId: number, messageId: number, text: string, keyboard?: InlineKeyboardMarkup): void {
    this.track(
      this.gateway.editText(chatId, messageId, text, keyboard, { budget: 'mandatory', deadlineMs: REPLY_DEADLINE_MS }),
      chatId,
    );
  }

  async onModuleDestroy(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const timeout = new AbortController();
    await Promise.race([Promise.allSettled([...this.inFlight]), sleep(FLUSH_TIMEOUT_MS, timeout.signal)]);
    timeout.abort();
  }

  private track(send: Promise<void>, chatId: number): void {
    const tracked = send
      .catch(async (err: unknown) => {
        if (err instanceof TelegramCallError && err.kind === 'unreachable') await this.blocklist.mark(chatId);
        else this.log.warn({ chatId, err: errorMessage(err) }, 'reply not sent');
      })
      .catch(() => undefined)
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }
}
