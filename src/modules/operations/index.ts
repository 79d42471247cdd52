/** The operations module's public API (used by the CLI and the bot's admin commands). */
export { OperationsModule } from './operations.module';
export {
  DlqService,
  RedriveError,
  requestOf,
  type DlqItem,
  type RedriveAudit,
  type RedriveProblem,
  type RedriveResult,
} from './dlq.service';
export { DrainService, type DrainStatus } from './drain.service';
