import {
  Inject,
  Module,
  RequestMethod,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnModuleInit,
} from '@nestjs/common';
import { HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import type { RedisClient } from '../../redis/redis-client';
import { TelegrafModule } from 'nestjs-telegraf';
import type { Logger } from '../../common/logger';
import { ROOT_LOGGER } from '../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { WorkflowCatalog } from '../../workflows';
import { HealthContributors } from '../health';
import { OperationsModule } from '../operations';
import { AdminCommandsService } from './admin/admin-commands.service';
import { BotKeys } from './bot-keys';
import { BotEventsController } from './delivery/bot-events.controller';
import { ChatUnreachableHandler } from './delivery/chat-unreachable.handler';
import { DeliveryLedger } from './delivery/delivery-ledger';
import { JobFinisherService } from './delivery/job-finisher.service';
import { ResultDeliveryService } from './delivery/result-delivery.service';
import { BotLauncherService } from './launch/bot-launcher.service';
import { TelegramWebhookMiddleware } from './launch/telegram-webhook.middleware';
import { TelegramHealthIndicator } from './launch/telegram.health';
import { UserSettingsStore } from './settings/user-settings.store';
import { BotJobStore } from './status/bot-job.store';
import { JobStateReader } from './status/job-state.reader';
import { StatusMessengerService } from './status/status-messenger.service';
import { StatusRefresherService } from './status/status-refresher.service';
import { ChatBlocklistStore } from './telegram/chat-blocklist.store';
import { SecretScrubber } from './telegram/secret-scrubber';
import { SendBudget } from './telegram/send-budget';
import { TelegramCallMeter } from './telegram/telegram-call.meter';
import { TelegramGateway } from './telegram/telegram-gateway';
import { BotUpdate } from './updates/bot.update';
import { CallbackSigner } from './updates/callback-data';
import { JobButtonsService } from './updates/job-buttons.service';
import { PhotoDownloadService } from './updates/photo-download.service';
import { PromptIntakeService, TEXT_WORKFLOW } from './updates/prompt-intake.service';
import { ReplySenderService } from './updates/reply-sender.service';
import { UserCommandsService } from './updates/user-commands.service';
import { GenerationCoreModule } from '../generation';

/** Telegram handlers can take a while (a photo download); the job itself is never awaited in one. */
const HANDLER_TIMEOUT_MS = 60_000;
const WEBHOOK_PATH = /^\/[A-Za-z0-9/_.-]*$/;

/** Mounted for the `bot` role without TELEGRAM_BOT_TOKEN: says so once and does nothing else. */
@Module({
  providers: [
    {
      provide: 'BOT_DISABLED_NOTICE',
      inject: [ROOT_LOGGER],
      useFactory: (log: Logger) => {
        log.warn({}, 'TELEGRAM_BOT_TOKEN is not set: the bot role is off');
        return true;
      },
    },
  ],
})
export class BotDisabledModule {}

/**
 * The `bot` role: nestjs-telegraf for updates (polling, or the webhook route on the Nest HTTP server), the
 * `bot` consumer group for final events (status message, result delivery through the ledger), the status
 * refresher for queue position and progress, and the Redis-shared send budget every Bot API call goes through.
 */
@Module({})
export class BotModule implements NestModule, OnModuleInit {
  static forRoot(config: AppConfig): DynamicModule {
    const token = config.telegram.botToken;
    if (!token) return { module: BotDisabledModule };
    return {
      module: BotModule,
      imports: [
        TelegrafModule.forRoot({
          token,
          launchOptions: false,
          include: [BotModule],
          options: {
            handlerTimeout: HANDLER_TIMEOUT_MS,
            // Every call over HTTP, never folded into the webhook response, whose errors nobody would see.
            telegram: { webhookReply: false, ...(config.telegram.apiRoot ? { apiRoot: config.telegram.apiRoot } : {}) },
          },
        }),
        GenerationCoreModule,
        OperationsModule,
        TerminusModule,
      ],
      controllers: [BotEventsController],
      providers: [
        { provide: BotKeys, inject: [StreamKeys], useFactory: (keys: StreamKeys) => new BotKeys(keys) },
        {
          provide: SecretScrubber,
          useFactory: () => new SecretScrubber([token, config.telegram.webhookSecret]),
        },
        { provide: CallbackSigner, useFactory: () => new CallbackSigner(token) },
        {
          provide: SendBudget,
          inject: [REDIS, BotKeys],
          useFactory: (redis: RedisClient, keys: BotKeys) =>
            new SendBudget(redis, keys, { perSecond: config.telegram.maxSendsPerSecond }),
        },
        TelegramCallMeter,
        TelegramGateway,
        ChatBlocklistStore,
        UserSettingsStore,
        BotJobStore,
        JobStateReader,
        StatusMessengerService,
        StatusRefresherService,
        DeliveryLedger,
        ChatUnreachableHandler,
        ResultDeliveryService,
        JobFinisherService,
        ReplySenderService,
        PhotoDownloadService,
        PromptIntakeService,
        JobButtonsService,
        UserCommandsService,
        AdminCommandsService,
        BotUpdate,
        BotLauncherService,
      ],
    };
  }

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly catalog: WorkflowCatalog,
    private readonly launcher: BotLauncherService,
    private readonly contributors: HealthContributors,
    private readonly health: HealthIndicatorService,
  ) {}

  onModuleInit(): void {
    // Fail at start-up, not at the first message: text prompts need this workflow.
    if (!this.catalog.get(TEXT_WORKFLOW)) {
      throw new Error(`the bot needs the "${TEXT_WORKFLOW}" workflow, and WORKFLOWS_DIR has none`);
    }
    const indicator = new TelegramHealthIndicator(this.launcher.state, this.health);
    this.contributors.register({ key: 'telegram', check: () => indicator.check() });
  }

  configure(consumer: MiddlewareConsumer): void {
    const url = this.config.telegram.webhookUrl;
    if (!url) return;
    const path = new URL(url).pathname;
    if (!WEBHOOK_PATH.test(path)) {
      throw new Error(`TELEGRAM_WEBHOOK_URL path must be letters, digits and /_.- only (got "${path}")`);
    }
    consumer.apply(TelegramWebhookMiddleware).forRoutes({ path, method: RequestMethod.POST });
  }
}
