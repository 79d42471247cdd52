import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { errorMessage } from '../../../streams/stream-errors';
import { BotJobStore } from '../status/bot-job.store';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { GenerationService } from '../../generation';

/**
 * A chat answered 403 (the user blocked the bot): remember it, and cancel that chat's jobs still waiting, so the
 * GPUs don't draw pictures nobody can receive. Nothing is retried.
 */
@Injectable()
export class ChatUnreachableHandler {
  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly blocklist: ChatBlocklistStore,
    private readonly store: BotJobStore,
    private readonly generations: GenerationService,
  ) {}

  async handle(chatId: number): Promise<void> {
    if (await this.blocklist.isBlocked(chatId)) return;
    await this.blocklist.mark(chatId);
    this.log.info({ chatId }, 'chat unreachable (the user blocked the bot?): nothing more is sent there');
    for (const jobId of await this.store.liveJobs(1_000)) {
      const record = await this.store.get(jobId);
      if (record?.chatId !== chatId) continue;
      await this.generations.cancel(jobId, 'bot:chat-unreachable').catch((err: unknown) => {
        this.log.debug({ jobId, err: errorMessage(err) }, 'could not cancel a blocked chat job');
      });
    }
  }
}
