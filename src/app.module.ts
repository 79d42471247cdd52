import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { BlobJanitorService } from './blobs/blob-janitor.service';
import { ROOT_LOGGER } from './common/root-logger';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { HttpErrorFilter } from './http/http-error.filter';
import { WorkflowCatalogModule } from './modules/catalog/workflow-catalog.module';
import { HealthModule } from './modules/health/health.module';
import { MetricsModule } from './modules/metrics/metrics.module';
import { StreamsModule } from './streams/streams.module';

const QUIET_PATHS = ['/health', '/metrics'];

/** Mounts the shared infrastructure plus exactly the modules of the configured roles. */
@Module({})
export class AppModule {
  /**
   * Role modules are loaded only when the role runs: a gpu replica does not pay for telegraf, nor a bot replica
   * for the ComfyUI client and simulator (resident memory is per process, and processes are what we scale).
   */
  static async forRoot(config: AppConfig, logger: PinoLogger): Promise<DynamicModule> {
    const roleModules: (Type | DynamicModule)[] = [];
    if (config.roles.has('api')) {
      roleModules.push((await import('./modules/generation/generation-api.module')).GenerationApiModule);
    }
    if (config.roles.has('projector')) {
      roleModules.push((await import('./modules/generation/projector.module')).ProjectorModule);
    }
    if (config.roles.has('gpu')) roleModules.push((await import('./modules/gpu/gpu.module')).GpuModule);
    if (config.roles.has('bot')) roleModules.push((await import('./modules/bot/bot.module')).BotModule.forRoot(config));
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            logger,
            autoLogging: { ignore: (req) => QUIET_PATHS.some((p) => (req.url ?? '').startsWith(p)) },
            customLogLevel: (_req, res, err) =>
              err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug',
          },
        }),
        StreamsModule,
        WorkflowCatalogModule,
        HealthModule,
        MetricsModule,
        ...roleModules,
      ],
      providers: [
        { provide: ROOT_LOGGER, useValue: logger },
        BlobJanitorService,
        { provide: APP_FILTER, useFactory: () => new HttpErrorFilter(logger) },
      ],
      exports: [ROOT_LOGGER],
      global: true,
    };
  }
}
