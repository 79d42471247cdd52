import { createHash } from 'node:crypto';
import type { BlobStore } from '../../../blobs/blob-store';
import { silentLogger, type Logger } from '../../../common/logger';
import type { JobInputValue } from '../../../streams/job-event.types';
import { errorMessage } from '../../../streams/stream-errors';
import { bindWorkflow, deterministicSeedSource, requirementsOf, type WorkflowTemplate } from '../../../workflows';
import { ComfyUiClient } from '../comfyui/comfyui.client';
import type { ComfyPrompt, ComfyPromptEvent, PromptResult } from '../comfyui/comfyui.types';
import type { ComfyUiInstance } from '../pool/comfyui-instance';
import { NoCapableInstanceError, type InstancePool } from '../pool/instance-pool';
import { toExecutionError } from './comfyui-error.mapper';
import {
  ExecutionError,
  type ExecutionHooks,
  type ExecutionJob,
  type ExecutionResult,
  type GenerationExecutor,
} from './generation-executor';
import type { JobPlacementStore } from './job-placement.store';
import { resultNodesToTemp } from './temp-results';
import { Watchdog } from './watchdog';

export interface ComfyUiExecutorOptions {
  jobTimeoutMs: number;
  noProgressTimeoutMs: number;
  maxOutputBytes?: number;
  /** Told how many of this process's prompts are executing on an instance whenever that changes (metrics). */
  onRunning?: (instanceId: string, running: number) => void;
}

const EXTENSION: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/**
 * Runs a job on a ComfyUI instance of the pool: leases a slot, uploads image inputs and binds the template (inputs
 * and results both in ComfyUI's temp folder), submits with our own prompt_id, follows progress, and fetches the
 * outputs. Watchdogs (no progress once running, and a hard deadline) cancel the prompt on the instance and
 * quarantine it, so the retry lands elsewhere. A job taken over from a dead worker first looks for its prompt
 * where that worker put it: finished outputs are collected and a running prompt is re-attached, instead of running
 * the GPU work twice.
 */
export class ComfyUiExecutor implements GenerationExecutor {
  readonly name = 'comfyui';
  private readonly log: Logger;
  private readonly running = new Map<string, number>();

  constructor(
    private readonly pool: InstancePool,
    private readonly placements: JobPlacementStore,
    private readonly blobs: BlobStore,
    private readonly options: ComfyUiExecutorOptions,
    logger?: Logger,
  ) {
    this.log = logger ?? silentLogger;
  }

  capacity(): number {
    return this.pool.capacity();
  }

  drawingInstances(): string[] {
    return this.pool.usableIds();
  }

  poolInstances(): string[] {
    return this.pool.all().map((i) => i.id);
  }

  cannotRun(template: WorkflowTemplate, inputs: Record<string, JobInputValue>): string | null {
    return this.pool.cannotRun(requirementsOf(template, inputs));
  }

  async execute(job: ExecutionJob, hooks: ExecutionHooks): Promise<ExecutionResult> {
    const previous = job.placement !== undefined ? job.placement : await this.placements.get(job.jobId);
    const previousInstance = previous ? this.pool.byId(previous.instanceId) : undefined;
    if (previous && previousInstance) {
      const resumed = await this.resume(job, hooks, previousInstance, previous.promptId);
      if (resumed) return resumed;
    }
    // An instance that turns out to be down before it accepted the prompt is quarantined and another one is
    // tried (or awaited): a ComfyUI outage makes jobs wait, it does not fail them.
    // Routed by what the instances can run (node classes, model files) and kept on instances that have its models.
    const needs = { requirements: requirementsOf(job.template, job.inputs), jobId: job.jobId };
    for (;;) {
      const placed = await this.pool.acquire(hooks.signal, undefined, needs).catch((err: unknown) => {
        if (!(err instanceof NoCapableInstanceError)) throw err;
        throw new ExecutionError('no_capable_instance', err.message, false, { cause: err });
      });
      try {
        return await this.runFresh(job, hooks, placed.instance);
      } catch (err) {
        if (!(err instanceof NotPlacedError)) throw err;
        this.log.warn(
          { jobId: job.jobId, instance: placed.instance.url, err: err.message },
          'instance refused the job',
        );
      } finally {
        // Not awaited: its ZREM is queued on the connection ahead of whatever the job sends next (storing the
        // result), so the slot is free before anyone hears the job ended, without a round trip of its own.
        void placed.release();
      }
    }
  }

  /** The prompt of an earlier attempt: collect it if done, follow it if queued or running, else run anew. */
  private async resume(
    job: ExecutionJob,
    hooks: ExecutionHooks,
    instance: ComfyUiInstance,
    promptId: string,
  ): Promise<ExecutionResult | null> {
    let location;
    try {
      location = await instance.client.locate(promptId, hooks.signal, hooks.trace);
    } catch (err) {
      this.log.warn(
        { jobId: job.jobId, instance: instance.url, err: errorMessage(err) },
        'cannot locate earlier prompt',
      );
      return null;
    }
    if (location.state === 'missing') return null;
    if (location.state === 'done' && location.entry.status?.statusStr !== 'success') return null;
    this.log.info({ jobId: job.jobId, promptId, state: location.state }, 're-attaching to the earlier prompt');
    const placed = await this.pool.acquire(hooks.signal, instance);
    try {
      await hooks.onAccepted({ instance: instance.id, promptId });
      if (location.state !== 'pending') await hooks.onStarted();
      const result = await this.follow(job, hooks, instance, promptId, location.state !== 'pending');
      return await this.collect(job, instance, promptId, result, hooks);
    } finally {
      void placed.release(); // as in execute
    }
  }

  private async runFresh(
    job: ExecutionJob,
    hooks: ExecutionHooks,
    instance: ComfyUiInstance,
  ): Promise<ExecutionResult> {
    const promptId = promptIdFor(job.jobId, job.attempt);
    const prompt = await this.prepare(job, instance, hooks);
    await this.placements.set(job.jobId, { instanceId: instance.id, promptId, attempt: job.attempt }, hooks.signal);
    try {
      // A later attempt (retry, takeover) was submitted before anything placed since: it goes to the front of
      // the instance's queue, so a retried job keeps its place.
      await instance.client.submit(prompt, {
        promptId,
        signal: hooks.signal,
        front: job.attempt > 1,
        trace: hooks.trace,
      });
    } catch (err) {
      throw this.placementFailure(instance, err);
    }
    await hooks.onAccepted({ instance: instance.id, promptId });
    const result = await this.follow(job, hooks, instance, promptId, false);
    return this.collect(job, instance, promptId, result, hooks);
  }

  /** Uploads image inputs to this instance and binds every input into a copy of the template graph. */
  private async prepare(job: ExecutionJob, instance: ComfyUiInstance, hooks: ExecutionHooks): Promise<ComfyPrompt> {
    const { signal, trace } = hooks;
    const values: Record<string, Exclude<JobInputValue, { blob: unknown }>> = {};
    const uploaded: Record<string, string> = {};
    for (const [name, value] of Object.entries(job.inputs)) {
      if (value === null || typeof value !== 'object') {
        values[name] = value;
        continue;
      }
      const bytes = await this.blobs.get(value.blob.hash);
      if (!bytes) throw new ExecutionError('input_expired', `Input image "${name}" is no longer available.`, false);
      const filename = `comfy-relay-${job.jobId}-${name}.${EXTENSION[value.blob.type] ?? 'png'}`;
      try {
        // Into temp/, which ComfyUI empties at every start: input/ is never cleaned (there is no delete route).
        const file = await instance.client.uploadImage(bytes, filename, {
          overwrite: true,
          type: 'temp',
          signal,
          trace,
        });
        uploaded[name] = ComfyUiClient.loadImageName(file);
      } catch (err) {
        throw this.placementFailure(instance, err);
      }
    }
    try {
      const bound = bindWorkflow(job.template, values, {
        uploadedImages: uploaded,
        seedSource: deterministicSeedSource(job.jobId),
      });
      return resultNodesToTemp(bound.prompt, bound.outputNodeIds);
    } catch (err) {
      throw new ExecutionError('bad_inputs', errorMessage(err), false, { cause: err });
    }
  }

  /** Follows the prompt to its end under the watchdogs; cancels it on the instance when we stop waiting. */
  private async follow(
    job: ExecutionJob,
    hooks: ExecutionHooks,
    instance: ComfyUiInstance,
    promptId: string,
    alreadyRunning: boolean,
  ): Promise<PromptResult> {
    const watchdog = new Watchdog(this.options.jobTimeoutMs, this.options.noProgressTimeoutMs);
    const stop = AbortSignal.any([hooks.signal, watchdog.signal]);
    if (alreadyRunning) watchdog.running();
    let started = alreadyRunning;
    if (started) this.countRunning(instance, 1);
    // Awaited before the outcome is returned or thrown, so job.started is never appended after job.completed.
    let announced: Promise<void> = Promise.resolve();
    try {
      return await instance.client.watch(promptId, {
        signal: stop,
        trace: hooks.trace,
        onEvent: (event: ComfyPromptEvent) => {
          if (event.type === 'started' || event.type === 'executing' || event.type === 'progress') {
            watchdog.running();
            if (!started) {
              started = true;
              this.countRunning(instance, 1);
              announced = hooks.onStarted().catch((err: unknown) => {
                this.log.warn({ jobId: job.jobId, promptId, err: errorMessage(err) }, 'could not record the start');
              });
            }
          }
          if (event.type === 'progress') hooks.onProgress({ value: event.value, max: event.max, node: event.node });
        },
      });
    } catch (err) {
      if (watchdog.signal.aborted || hooks.cancelSignal.aborted) {
        await instance.client.cancel(promptId, undefined, hooks.trace).catch((cancelErr: unknown) => {
          this.log.warn({ jobId: job.jobId, err: errorMessage(cancelErr) }, 'cancel on ComfyUI failed');
        });
      }
      if (watchdog.signal.aborted) {
        const reason = watchdog.reason();
        this.pool.reportFailure(instance, reason);
        throw new ExecutionError(watchdog.code(), reason, true, { cause: err });
      }
      if (hooks.signal.aborted) throw err;
      this.noteInstanceFailure(instance, err);
      throw toExecutionError(err);
    } finally {
      watchdog.dispose();
      if (started) this.countRunning(instance, -1);
      await announced;
    }
  }

  private countRunning(instance: ComfyUiInstance, delta: number): void {
    const running = Math.max(0, (this.running.get(instance.id) ?? 0) + delta);
    this.running.set(instance.id, running);
    this.options.onRunning?.(instance.id, running);
  }

  private async collect(
    job: ExecutionJob,
    instance: ComfyUiInstance,
    promptId: string,
    result: PromptResult,
    { signal, trace }: ExecutionHooks,
  ): Promise<ExecutionResult> {
    const wanted = job.template.output?.node;
    const refs = wanted ? (result.outputs[wanted]?.images ?? []) : result.images;
    if (refs.length === 0) {
      throw new ExecutionError('no_output', 'ComfyUI finished without producing an image.', false);
    }
    const outputs = [];
    for (const ref of refs) {
      try {
        const bytes = await instance.client.view(ref, {
          maxBytes: this.options.maxOutputBytes ?? 64 * 1024 * 1024,
          signal,
          trace,
        });
        const type = sniffType(bytes);
        // A proxy's error page or a cut-off file must not become a "successful" result.
        if (type === 'application/octet-stream' || (type === 'image/png' && !isCompletePng(bytes))) {
          throw new ExecutionError(
            'comfyui_bad_output',
            `ComfyUI returned a broken or non-image output for ${ref.filename} (${bytes.length} bytes).`,
            true,
          );
        }
        outputs.push({ bytes, type });
      } catch (err) {
        throw toExecutionError(err);
      }
    }
    return { instance: instance.id, promptId, outputs };
  }

  /** Before the prompt is on the instance, an unreachable instance means "try another", not "fail the job". */
  private placementFailure(instance: ComfyUiInstance, err: unknown): Error {
    const verdict = toExecutionError(err);
    if (verdict.code !== 'comfyui_unavailable' || !verdict.retriable) return verdict;
    this.pool.reportFailure(instance, verdict.message);
    return new NotPlacedError(verdict.message);
  }

  /** Connection-level failures say the instance is unwell; a bad workflow or node error does not. */
  private noteInstanceFailure(instance: ComfyUiInstance, err: unknown): void {
    const verdict = toExecutionError(err);
    if (verdict.code === 'comfyui_unavailable' && verdict.retriable) this.pool.reportFailure(instance, verdict.message);
  }
}

class NotPlacedError extends Error {
  override readonly name = 'NotPlacedError';
}

/** Our prompt_id for an attempt: a UUID derived from the job, so a retry never collides with the old prompt. */
export function promptIdFor(jobId: string, attempt: number): string {
  const hex = createHash('sha1').update(`${jobId}:${attempt}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/** A PNG ends with its IEND chunk: a truncated transfer does not. */
function isCompletePng(bytes: Buffer): boolean {
  return bytes.length >= 57 && bytes.subarray(bytes.length - 8, bytes.length - 4).toString('ascii') === 'IEND';
}

function sniffType(bytes: Buffer): string {
  if (bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes.subarray(8, 12).toString('ascii') === 'WEBP') return 'image/webp';
  return 'application/octet-stream';
}
