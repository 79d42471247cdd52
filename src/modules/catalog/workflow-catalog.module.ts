import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { WorkflowCatalog } from '../../workflows';

/** Loads and validates every template at start: a bad file stops start-up, naming the file and the reason. */
@Global()
@Module({
  providers: [
    {
      provide: WorkflowCatalog,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => WorkflowCatalog.loadDir(config.workflowsDir),
    },
  ],
  exports: [WorkflowCatalog],
})
export class WorkflowCatalogModule {}
