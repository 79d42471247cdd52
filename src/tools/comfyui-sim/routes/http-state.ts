import type { Logger } from '../../../common/logger';
import type { SimExecutor } from '../comfyui-sim-executor';
import type { SimFaultBook } from '../comfyui-sim-faults';
import type { SimFileStore } from '../comfyui-sim-file.store';
import type { SimPromptQueue } from '../comfyui-sim-queue';
import type { SimRuntimeConfig } from '../comfyui-sim.types';
import type { NodeEnv } from '../nodes/sim-node.types';

/** The server state the routes work on; queue and executor are replaced when a crash is recovered. */
export interface SimHttpState {
  queue: SimPromptQueue;
  executor: SimExecutor;
  /** server.number: the next prompt number. */
  number: number;
  readonly files: SimFileStore;
  readonly env: NodeEnv;
  readonly config: SimRuntimeConfig;
  readonly faults: SimFaultBook;
  readonly counters: { submitted: number; rejected: number; uploads: number; requests: Map<string, number> };
  readonly logger: Logger;
  readonly argv: string[];
}
