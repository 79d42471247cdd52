import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-client';
import { CommandRunner, InjectCommander } from 'nest-commander';
import { BlobStoreOpener } from '../blobs/blob-store.opener';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { JobTimelineReader, JobViewRepository, ProjectionRebuilder } from '../modules/generation';
import { PoolCapabilityStore } from '../modules/capabilities';
import { StreamStatsReader } from '../modules/operations';
import { OperationsModule } from '../modules/operations';
import { REDIS } from '../streams/redis.provider';
import { StreamKeys } from '../streams/stream-keys';
import { StreamsModule } from '../streams/streams.module';
import { CliOutput, type CliIo } from './cli-io';
import { DlqListCommand } from './commands/dlq-list.command';
import { DlqRedriveCommand } from './commands/dlq-redrive.command';
import { DlqCommand } from './commands/dlq.command';
import { DrainCommand, DrainOffCommand, DrainOnCommand, DrainStatusCommand } from './commands/drain.command';
import { JobCommand } from './commands/job.command';
import { ProjectionsRebuildCommand } from './commands/projections-rebuild.command';
import { ProjectionsCommand } from './commands/projections.command';
import { ReplayCommand } from './commands/replay.command';
import { StatsCommand } from './commands/stats.command';
import { TailCommand } from './commands/tail.command';
import { JobEventsScanner } from './services/job-events.scanner';
import { JobInspectorService } from './services/job-inspector.service';
import { ProjectionRebuildService } from './services/projection-rebuild.service';
import { ReplayService } from './services/replay.service';

/** commander's Command, as nest-commander types it (its own commander version, not the top-level one). */
export type CommanderCommand = Parameters<CommandRunner['setCommand']>[0];

/** Hands the root commander to runCli, which sets output, exit and argument rules on the whole tree. */
@Injectable()
export class CommanderRoot {
  constructor(@InjectCommander() readonly command: CommanderCommand) {}
}

/**
 * The operator CLI: the app's own config, Redis connection, key names and publisher (StreamsModule), the
 * projection's reader and reducer, and the metrics module's stream reader. No roles start: nothing consumes.
 */
@Module({})
export class CliModule {
  static forRoot(config: AppConfig, io: CliIo): DynamicModule {
    return {
      module: CliModule,
      imports: [ConfigModule.forRoot(config), StreamsModule, OperationsModule],
      providers: [
        { provide: CliOutput, useValue: new CliOutput(io) },
        CommanderRoot,
        JobViewRepository,
        JobTimelineReader,
        // Built here on the process's connection: the services get readers, never the raw client.
        {
          provide: ProjectionRebuilder,
          inject: [REDIS, StreamKeys],
          useFactory: (r: RedisClient, k: StreamKeys) => new ProjectionRebuilder(r, k),
        },
        {
          provide: BlobStoreOpener,
          inject: [REDIS, APP_CONFIG],
          useFactory: (r: RedisClient, c: AppConfig) => new BlobStoreOpener(r, c.blobs),
        },
        StreamStatsReader,
        PoolCapabilityStore,
        JobEventsScanner,
        JobInspectorService,
        ReplayService,
        ProjectionRebuildService,
        JobCommand,
        TailCommand,
        StatsCommand,
        DlqCommand,
        DlqListCommand,
        DlqRedriveCommand,
        DrainCommand,
        DrainOnCommand,
        DrainOffCommand,
        DrainStatusCommand,
        ReplayCommand,
        ProjectionsCommand,
        ProjectionsRebuildCommand,
      ],
    };
  }
}
