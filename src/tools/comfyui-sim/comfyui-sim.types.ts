import type { Logger } from '../../common/logger';

/** Loose JSON object as it arrives on the wire. */
export type JsonObject = Record<string, unknown>;

/** One node of an API-format prompt after validation (class_type and inputs are known to exist). */
export interface SimPromptNode {
  class_type: string;
  inputs: JsonObject;
  [extra: string]: unknown;
}

export type SimPrompt = Record<string, SimPromptNode>;

export type DirType = 'input' | 'output' | 'temp';

export interface SimFileRef {
  filename: string;
  subfolder: string;
  type: DirType;
}

/** ComfyUI's queue tuple: (number, prompt_id, prompt, extra_data, outputs_to_execute) + sensitive extras. */
export interface SimQueueItem {
  number: number;
  promptId: string;
  prompt: SimPrompt;
  extraData: JsonObject;
  outputsToExecute: string[];
  sensitive: JsonObject;
}

export type StatusMessage = [event: string, data: JsonObject];

export interface SimHistoryEntry {
  prompt: [number, string, SimPrompt, JsonObject, string[]];
  outputs: Record<string, JsonObject>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: StatusMessage[] };
  meta: Record<string, JsonObject>;
}

/** Model file names the loader nodes offer (their combo lists). */
export interface SimModelLists {
  checkpoints: string[];
  diffusionModels: string[];
  textEncoders: string[];
  vaes: string[];
  loras: string[];
}

/** Everything tests may change while the simulator runs (`configure()`). */
export interface SimRuntimeConfig {
  /** Time one sampler step takes; 0 runs as fast as the event loop allows. */
  stepMs: number;
  /** Overrides the `steps` input of sampler nodes (KSampler, ProbeProgress); null keeps the prompt's value. */
  samplerSteps: number | null;
  /** Send binary preview frames with sampler progress. */
  previews: boolean;
  /** Longest side of preview images in pixels. */
  previewMaxSize: number;
  /** Serve the (not captured, modelled) `POST /api/jobs/{id}/cancel`; ComfyUI 0.3.64 answers it with 405. */
  jobsCancelRoute: boolean;
  /** Delay before `/view` answers. */
  viewDelayMs: number;
  /** Refuse WebSocket upgrades (the HTTP API keeps working). */
  acceptWebSockets: boolean;
  /** Sampler steps wait for `releaseSteps()` instead of a timer: deterministic interleavings for tests. */
  manualSteps: boolean;
  /**
   * Time a loader takes to bring in model files other than those the previous model-using prompt loaded (a
   * checkpoint switch: seconds on a real GPU). A prompt with the same files, or with none, pays nothing.
   */
  modelSwitchMs: number;
  /**
   * Send `executed` again for a cached output node, with its cached UI output (ComfyUI 0.3.64, since the execution
   * rewrite of mid-2024). false: as earlier releases did, a cached output node sends nothing (its outputs are in
   * the history only).
   */
  resendCachedOutputs: boolean;
}

export interface ComfyUiSimulatorOptions extends Partial<SimRuntimeConfig> {
  models?: Partial<SimModelLists>;
  logger?: Logger;
  /** History cap (ComfyUI: 10000, oldest evicted). */
  maxHistory?: number;
  /** Stored files cap in bytes; the oldest output/temp files are dropped past it (ComfyUI keeps them on disk). */
  maxStoredBytes?: number;
}

export interface SimStartOptions {
  port?: number;
  host?: string;
}

/** Failure injections. Each fires `times` times (default 1) and is then forgotten. */
export type SimFault =
  /** The next prompt starts (execution_start, executing) and then makes no progress until interrupted. */
  | { kind: 'hang'; times?: number }
  /** Crash: now, or when the next prompt has started running. Sockets close, the port stops listening. */
  | { kind: 'crash'; at?: 'now' | 'running'; times?: number }
  /** HTTP failure on a route: a path without the /api prefix ('/prompt', '/view'), or a prefix ending in '*'. */
  | {
      kind: 'http';
      route: string;
      method?: 'GET' | 'POST';
      /** Answer with this status (5xx: ComfyUI's plain-text 500 body). */
      status?: number;
      /** Wait before answering (or before the normal handling when no status is given). */
      delayMs?: number;
      /** Destroy the connection instead of answering. */
      dropConnection?: boolean;
      times?: number;
    }
  /** The next POST /prompt fails validation (400, prompt_outputs_failed_validation). */
  | { kind: 'validation-error'; nodeId?: string; message?: string; times?: number }
  /** A node raises at run time (execution_error). `oom` mimics torch's OutOfMemoryError. */
  | {
      kind: 'execution-error';
      classType?: string;
      nodeId?: string;
      exceptionType?: string;
      message?: string;
      oom?: boolean;
      times?: number;
    };

export interface SimStats {
  /** Prompts accepted by POST /prompt. */
  submitted: number;
  /** POST /prompt answered 400. */
  rejected: number;
  /** Runs started by the executor (cached re-runs included). */
  executions: number;
  executionsByPromptId: Record<string, number>;
  succeeded: number;
  failed: number;
  interrupted: number;
  pending: number;
  running: string | null;
  historySize: number;
  /** Sockets registered under a clientId (what routing sees). */
  registeredSockets: number;
  /** Open WebSocket connections, registered or not. */
  openSockets: number;
  uploads: number;
  crashed: boolean;
  /** Prompts that loaded model files (the first load after a start included). */
  modelLoads: number;
  /** Loads that replaced other loaded model files. */
  modelSwitches: number;
  /** HTTP requests answered, by `METHOD /route` (a path parameter as `{id}`: `GET /history/{id}`), /api aliases folded. */
  requests: Record<string, number>;
}

/** RGB float image in [0, 1], row-major, like one frame of ComfyUI's IMAGE tensor. */
export interface SimImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** ComfyUI's IMAGE is a batch. */
export type SimImageBatch = SimImage[];

export interface SimMask {
  width: number;
  height: number;
  data: Float32Array;
}
