import { Module } from '@nestjs/common';
import { GenerationCoreModule } from './generation-core.module';
import { ProjectorController } from './projection/projector.controller';

/** The `projector` role: the consumer group that builds `jobs:view:<id>` from the events. */
@Module({ imports: [GenerationCoreModule], controllers: [ProjectorController] })
export class ProjectorModule {}
