import type { AppConfig } from '../config/app-config';
import type { StreamKeys } from './stream-keys';

export type ConsumerGroupName = 'gpu' | 'projector' | 'bot';

export interface ConsumerGroupSpec {
  group: ConsumerGroupName;
  streams: readonly string[];
  concurrency: number;
  /** Dead letters of this group end the job: it is the group that does the work. */
  deadLetterEndsJob: boolean;
}

/** Which streams each group reads, in priority order, and how much it takes on at once. */
export function consumerGroupSpecs(keys: StreamKeys, config: AppConfig): Record<ConsumerGroupName, ConsumerGroupSpec> {
  return {
    gpu: {
      group: 'gpu',
      streams: [keys.requestsPriority, keys.requests],
      concurrency: config.gpuConcurrency,
      deadLetterEndsJob: true,
    },
    projector: {
      group: 'projector',
      streams: [keys.requestsPriority, keys.requests, keys.events],
      concurrency: config.projectorConcurrency,
      deadLetterEndsJob: false,
    },
    bot: { group: 'bot', streams: [keys.events], concurrency: 8, deadLetterEndsJob: false },
  };
}
