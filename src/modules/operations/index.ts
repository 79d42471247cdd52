/** The operations module's public API (used by the CLI, the bot's admin commands, /metrics and /health). */
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
export {
  QUEUE_TIERS,
  StreamStatsReader,
  type ConsumerRow,
  type GpuWorkerRow,
  type GroupStats,
  type PendingHead,
  type QueueTier,
  type StreamStats,
  type StreamsSnapshot,
  type TierQueue,
} from './stream-stats.reader';
