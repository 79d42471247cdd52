/**
 * The generation module's public API: what the other roles (bot, gpu) and the operator tools may use. Their
 * imports of anything deeper are refused by ESLint (no-restricted-imports), so the job's state keeps one owner.
 */
export { GenerationCoreModule } from './generation-core.module';
export { GenerationService, type SubmitRequest, type SubmitResult } from './commands/generation.service';
export {
  ApiKeyLimitError,
  DrainingError,
  GenerationError,
  IdempotencyConflictError,
  InvalidRequestError,
  JobFinishedError,
  JobNotFoundError,
  NoCapableInstanceError,
  PriorityNotAllowedError,
  ReplicasUnconfirmedJobError,
  ServiceOverloadedError,
  UserLimitError,
} from './commands/generation.errors';
export { capacityOf, QueuePositionService, type GpuCapacity } from './commands/queue-position.service';
export { GpuWorkerAdvertStore, type GpuWorkerAdvert } from './commands/gpu-worker-advert.store';
export { DrainFlagStore } from './commands/drain-flag.store';
export {
  apiKeyActiveKey,
  fairAccountOf,
  KEY_ACTIVE_SET_FIELD,
  runSubmitScript,
  type SubmitScriptArgs,
} from './commands/job-submit.script';
export {
  JobLedger,
  PROJECTED_FIELD,
  type AppliedEventType,
  type QueueBacklog,
  type RunClaim,
} from './ledger/job-ledger';
export { JobViewRepository } from './projection/job-view.repository';
export { isTerminal, TERMINAL_STATUSES, type JobStatus, type JobView } from './projection/job-view';
export { reduceJobView } from './projection/job-view.reducer';
export { viewToHash } from './projection/job-view.codec';
export { JobTimelineReader, summarize, type TimelineStep } from './projection/job-timeline.reader';
export { ProjectionRebuilder, type ProjectionDifference } from './projection/projection-rebuilder';
