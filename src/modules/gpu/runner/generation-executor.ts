import type { TraceHandle } from '../../../common/observability/observability.hooks';
import type { JobInputValue } from '../../../streams/job-event.types';
import type { WorkflowTemplate } from '../../../workflows';
import type { JobPlacement } from './job-placement.store';

export interface ExecutionJob {
  jobId: string;
  attempt: number;
  template: WorkflowTemplate;
  inputs: Record<string, JobInputValue>;
  /** Where an earlier attempt placed the prompt, as the claim found it (undefined: not looked up yet). */
  placement?: JobPlacement | null;
}

export interface ExecutionHooks {
  /** Aborted on cancel, shutdown or lost ownership: stop waiting. */
  signal: AbortSignal;
  /**
   * Aborted only when the user cancelled: then the prompt is cancelled on ComfyUI too. On shutdown or a lost entry
   * it is left running, for the worker that takes the job over to collect or re-attach to.
   */
  cancelSignal: AbortSignal;
  /** Called once the work is placed somewhere (instance + its prompt id). */
  onAccepted(placement: { instance: string; promptId: string }): Promise<void>;
  /** Called when the work actually starts running. */
  onStarted(): Promise<void>;
  onProgress(progress: { value: number; max: number; stage?: string; node?: string }): void;
  /** With tracing on: the job handler's span, for the ComfyUI calls made for the job (their spans' parent). */
  trace?: TraceHandle;
}

export interface ExecutionOutput {
  bytes: Buffer;
  type: string;
}

export interface ExecutionResult {
  instance: string;
  promptId: string;
  outputs: ExecutionOutput[];
}

/** Runs one job somewhere (a ComfyUI instance, or the echo renderer) and returns the output images. */
export interface GenerationExecutor {
  readonly name: string;
  /** Parallel jobs this executor can run in this process (advertised for ETA). */
  capacity(): number;
  /** Ids of the instances that can draw now (each draws one job at a time), advertised for ETA. */
  drawingInstances(): string[];
  /** Ids of every instance of this process, up or not (advertised, so peers know what it can run). */
  poolInstances(): string[];
  /**
   * Why none of this process's instances can run the job (for a hand-off to a peer that can), or null when one
   * can, or may once it has been read.
   */
  cannotRun(template: WorkflowTemplate, inputs: Record<string, JobInputValue>): string | null;
  execute(job: ExecutionJob, hooks: ExecutionHooks): Promise<ExecutionResult>;
}

export const GENERATION_EXECUTOR = Symbol('GENERATION_EXECUTOR');

/** A failure with a verdict: retriable ones go back to the stream (another attempt), others fail the job. */
export class ExecutionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExecutionError';
  }
}
