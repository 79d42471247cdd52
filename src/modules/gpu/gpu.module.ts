import { Module } from '@nestjs/common';
import { EchoExecutor } from './echo/echo.executor';
import { CancelRegistry } from './runner/cancel-registry.service';
import { GENERATION_EXECUTOR } from './runner/generation-executor';
import { GpuWorkerAdvertService } from './runner/gpu-worker-advert.service';
import { JobRunnerController } from './runner/job-runner.controller';

/** The `gpu` role: the consumer group that runs `job.requested` on an executor. */
@Module({
  controllers: [JobRunnerController],
  providers: [
    CancelRegistry,
    GpuWorkerAdvertService,
    { provide: GENERATION_EXECUTOR, useFactory: () => new EchoExecutor() },
  ],
})
export class GpuModule {}
