import type { AppConfig } from '../config/app-config';
import type { StreamKeys } from './stream-keys';

export type ConsumerGroupName = 'gpu' | 'projector' | 'bot';

export interface ConsumerGroupSpec {
  group: ConsumerGroupName;
  streams: readonly string[];
  concurrency: number;
  /** Dead letters of this group end the job: it is the group that does the work. */
  deadLetterEndsJob: boolean;
  /** Pause after a read that returned entries, so a busy stream is read (and acked) in batches. */
  readBatchMs: number;
  /** Peers may hand its consumers entries they cannot work on (a gpu process without a capable instance). */
  acceptsHandOffs: boolean;
  /**
   * Its entries carry fair-queue start tags: with shards, each shard's consumer reads one entry ahead so a freed
   * slot goes to the lowest tag of any shard (ConcurrencyBudget).
   */
  fairAcrossShards: boolean;
}

/**
 * The projector and the bot see every lifecycle event of every job and act on few of them (the projector on none
 * that a worker already applied): read a busy stream in batches, a read and an ack per batch rather than per event.
 * Their work waits this long at most. The gpu group reads at once: a job waiting for a free slot should not.
 */
const PROJECTOR_READ_BATCH_MS = 25;
const BOT_READ_BATCH_MS = 10;

/** Which streams each group reads, in priority order, and how much it takes on at once. */
export function consumerGroupSpecs(keys: StreamKeys, config: AppConfig): Record<ConsumerGroupName, ConsumerGroupSpec> {
  return {
    gpu: {
      group: 'gpu',
      streams: [keys.requestsPriority, keys.requests],
      concurrency: config.gpuConcurrency,
      deadLetterEndsJob: true,
      readBatchMs: 0,
      acceptsHandOffs: true,
      fairAcrossShards: true,
    },
    projector: {
      group: 'projector',
      streams: [keys.requestsPriority, keys.requests, keys.events],
      concurrency: config.projectorConcurrency,
      deadLetterEndsJob: false,
      readBatchMs: PROJECTOR_READ_BATCH_MS,
      acceptsHandOffs: false,
      fairAcrossShards: false,
    },
    bot: {
      group: 'bot',
      streams: [keys.events],
      concurrency: 8,
      deadLetterEndsJob: false,
      readBatchMs: BOT_READ_BATCH_MS,
      acceptsHandOffs: false,
      fairAcrossShards: false,
    },
  };
}
