import { setImmediate as nextTick } from 'node:timers/promises';
import type { Logger } from '../../common/logger';
import { SimOutputCache } from './comfyui-sim-cache';
import { SimExecutionList } from './comfyui-sim-execution-list';
import type { SimFaultBook } from './comfyui-sim-faults';
import { encodePng } from './comfyui-sim-image';
import { SimPromptRun } from './comfyui-sim-prompt-run';
import { PyException, pyFrame } from './comfyui-sim-python.util';
import type { SimPromptQueue } from './comfyui-sim-queue';
import { previewFrame, previewFrameWithMetadata, type SimSocketHub } from './comfyui-sim-socket-hub';
import type { JsonObject, SimFault, SimImage, SimQueueItem, SimRuntimeConfig } from './comfyui-sim.types';
import { NODE_DEFS } from './nodes/node-registry';
import type { NodeEnv, NodeRunContext } from './nodes/sim-node.types';

/** comfy.model_management.InterruptProcessingException */
class InterruptProcessing extends Error {}

/** The executor was stopped (server stop or crash): unwind without emitting anything more. */
class ExecutorStopped extends Error {}

const OOM_TIPS =
  'This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.';

const GENERIC_TRACEBACK = [
  pyFrame(
    'execution.py',
    496,
    'execute',
    'output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(...)',
    'await',
  ),
  pyFrame('execution.py', 277, 'process_inputs', 'result = f(**inputs)', 'f('),
];

export interface SimCounters {
  executions: number;
  byPromptId: Map<string, number>;
  succeeded: number;
  failed: number;
  interrupted: number;
  modelLoads: number;
  modelSwitches: number;
}

export interface ExecutorDeps {
  queue: SimPromptQueue;
  hub: SimSocketHub;
  env: NodeEnv;
  config: SimRuntimeConfig;
  faults: SimFaultBook;
  counters: SimCounters;
  tempSuffix: string;
  /** Called by a `crash` fault armed for 'running'. */
  crash: () => void;
  logger: Logger;
}

type NodeOutcome = 'done' | 'interrupted' | PyException;

/**
 * The prompt worker (main.py prompt_worker + execution.PromptExecutor): one prompt at a time, frames in the order
 * and to the recipients the captures show, history written before the final `executing {node: null}`.
 */
export class SimExecutor {
  /** server.client_id: who hears the running prompt's execution frames. */
  clientId: string | null = null;
  /** server.last_node_id: told to a client that reconnects while its prompt runs. */
  lastNodeId: string | null = null;
  private runningPromptId: string | null = null;
  private interruptFlag = false;
  private stepTokens = 0;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  private readonly cache = new SimOutputCache();
  /** Model files on the (simulated) GPU since the last prompt that loaded any; a restart starts with none. */
  private loadedModels: string | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ExecutorDeps) {}

  start(): void {
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeAll();
    await this.loopDone;
  }

  get running(): string | null {
    return this.runningPromptId;
  }

  /** nodes.interrupt_processing(): cooperative, seen at the next node start or progress update. */
  interrupt(): void {
    this.interruptFlag = true;
    this.wakeAll();
  }

  /** Lets `count` sampler steps through while `manualSteps` is on. */
  releaseSteps(count: number): void {
    this.stepTokens += count;
    this.wakeAll();
  }

  private get alive(): boolean {
    return !this.abort.signal.aborted;
  }

  private async loop(): Promise<void> {
    for (;;) {
      const taken = await this.deps.queue.take(this.abort.signal);
      if (!taken) return;
      try {
        await this.runItem(taken.item, taken.taskId);
      } catch (err) {
        if (!(err instanceof ExecutorStopped)) this.deps.logger.error({ err }, 'comfyui-sim: executor failed');
      }
      if (!this.alive) return;
      // Let HTTP and socket work in between prompts even when steps take no time.
      await nextTick();
    }
  }

  private readonly emit = (type: string, data: JsonObject, sid: string | null): void => {
    if (this.alive) this.deps.hub.send(type, data, sid);
  };

  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves after `ms` (null: never), or earlier on wakeAll(). */
  private wait(ms: number | null): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = ms === null ? null : setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private checkInterrupt(): void {
    if (!this.alive) throw new ExecutorStopped();
    if (this.interruptFlag) {
      this.interruptFlag = false;
      throw new InterruptProcessing();
    }
  }

  /** The time one sampler step takes: a timer, or a token from releaseSteps(); cut short by an interrupt. */
  private async stepTime(): Promise<void> {
    const { config } = this.deps;
    if (config.manualSteps) {
      while (this.stepTokens <= 0 && !this.interruptFlag && this.alive) await this.wait(null);
      if (this.stepTokens > 0 && !this.interruptFlag) this.stepTokens--;
      return;
    }
    if (config.stepMs <= 0) {
      await nextTick();
      return;
    }
    const deadline = Date.now() + config.stepMs;
    while (!this.interruptFlag && this.alive && Date.now() < deadline) await this.wait(deadline - Date.now());
  }

  private async runItem(item: SimQueueItem, taskId: number): Promise<void> {
    const { counters, env } = this.deps;
    counters.executions++;
    counters.byPromptId.set(item.promptId, (counters.byPromptId.get(item.promptId) ?? 0) + 1);
    this.interruptFlag = false;
    this.runningPromptId = item.promptId;
    const run = new SimPromptRun(item, this.emit);
    this.clientId = run.sid;
    const { promptId, prompt } = item;

    run.addMessage('execution_start', { prompt_id: promptId });
    this.cache.setPrompt(prompt, env);
    const isCached = (id: string): boolean => this.cache.get(id) !== undefined;
    run.addMessage('execution_cached', { nodes: Object.keys(prompt).filter(isCached), prompt_id: promptId });

    const list = new SimExecutionList(prompt, isCached);
    for (const output of item.outputsToExecute) list.addNode(output);
    const currentOutputs = [...new Set([...list.visitOrder, ...Object.keys(prompt)])];
    let outcome: 'success' | 'error' | 'interrupted' = 'success';
    while (!list.isEmpty() && outcome === 'success') {
      const nodeId = list.stage();
      if (nodeId === null) {
        const cycle = new PyException('graph.DependencyCycleError', 'Dependency cycle detected');
        run.addMessage('execution_error', this.errorData(run, list.visitOrder[0] ?? '', currentOutputs, {}, cycle));
        outcome = 'error';
        break;
      }
      if (isCached(nodeId)) {
        if (this.deps.config.resendCachedOutputs) {
          run.toClient('executed', {
            node: nodeId,
            display_node: nodeId,
            output: this.cache.getUi(nodeId)?.output ?? null,
            prompt_id: promptId,
          });
        }
        run.finishNode(nodeId);
        list.complete(nodeId);
        continue;
      }
      const inputs: Record<string, unknown> = {};
      const result = await this.executeNode(run, nodeId, inputs);
      if (result === 'done') {
        list.complete(nodeId);
      } else if (result === 'interrupted') {
        const data = {
          prompt_id: promptId,
          node_id: nodeId,
          node_type: prompt[nodeId].class_type,
          executed: run.executed,
        };
        run.addMessage('execution_interrupted', data, true);
        outcome = 'interrupted';
      } else {
        run.addMessage('execution_error', this.errorData(run, nodeId, currentOutputs, inputs, result));
        outcome = 'error';
      }
    }
    if (outcome === 'success') run.addMessage('execution_success', { prompt_id: promptId });

    const outputs: Record<string, JsonObject> = {};
    const meta: Record<string, JsonObject> = {};
    for (const id of Object.keys(prompt)) {
      const ui = this.cache.getUi(id);
      if (!ui) continue;
      outputs[id] = ui.output;
      meta[id] = ui.meta;
    }
    this.lastNodeId = null;
    this.runningPromptId = null;
    counters[outcome === 'success' ? 'succeeded' : outcome === 'error' ? 'failed' : 'interrupted']++;
    if (!this.alive) throw new ExecutorStopped();
    const completed = outcome === 'success';
    this.deps.queue.taskDone(taskId, {
      outputs,
      meta,
      status: { status_str: completed ? 'success' : 'error', completed, messages: run.messages },
    });
    run.toClient('executing', { node: null, prompt_id: promptId });
  }

  /** Runs one node that is not cached; `inputs` is filled for the error report. */
  private async executeNode(run: SimPromptRun, nodeId: string, inputs: Record<string, unknown>): Promise<NodeOutcome> {
    const { faults } = this.deps;
    const node = run.item.prompt[nodeId];
    const def = NODE_DEFS.get(node.class_type)!;
    run.startNode(nodeId);
    if (run.sid !== null) this.lastNodeId = nodeId;
    run.toClient('executing', { node: nodeId, display_node: nodeId, prompt_id: run.promptId });
    try {
      // Faults aimed at "the next prompt" fire on its first executed node (a fully cached run has none).
      if (run.executed.length === 0) {
        if (faults.take('crash', (f) => f.at === 'running')) {
          this.deps.crash();
          throw new ExecutorStopped();
        }
        if (faults.take('hang')) while (!this.interruptFlag && this.alive) await this.wait(null);
      }
      Object.assign(inputs, this.resolveInputs(run, nodeId));
      this.checkInterrupt();
      const injected = faults.take(
        'execution-error',
        (f) =>
          (f.nodeId === undefined || f.nodeId === nodeId) &&
          (f.classType === undefined || f.classType === node.class_type),
      );
      if (injected) throw injectedError(injected);
      if (def.modelInputs) await this.loadModels(run);
      const result = await def.run(this.context(run, nodeId), inputs);
      if (!this.alive) throw new ExecutorStopped();
      this.cache.set(nodeId, result.outputs);
      if (result.ui) {
        const meta = { node_id: nodeId, display_node: nodeId, parent_node: null, real_node_id: nodeId };
        this.cache.setUi(nodeId, { output: result.ui, meta });
        run.toClient('executed', { node: nodeId, display_node: nodeId, output: result.ui, prompt_id: run.promptId });
      }
      run.finishNode(nodeId);
      run.executed.push(nodeId);
      return 'done';
    } catch (err) {
      if (err instanceof ExecutorStopped || !this.alive) throw new ExecutorStopped();
      if (err instanceof InterruptProcessing) return 'interrupted';
      if (err instanceof PyException) return err;
      return new PyException('Exception', err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * The first loader of a prompt that needs other model files than those loaded pays the switch time once
   * (interruptible, like a step); later loaders of the same prompt find them loaded.
   */
  private async loadModels(run: SimPromptRun): Promise<void> {
    const files = new Set<string>();
    for (const node of Object.values(run.item.prompt)) {
      for (const input of NODE_DEFS.get(node.class_type)?.modelInputs ?? []) {
        const value = node.inputs[input];
        if (typeof value === 'string') files.add(value);
      }
    }
    const wanted = [...files].sort().join('|');
    if (wanted === '' || wanted === this.loadedModels) return;
    const { counters, config } = this.deps;
    counters.modelLoads++;
    if (this.loadedModels !== null) counters.modelSwitches++;
    this.loadedModels = wanted;
    const deadline = Date.now() + config.modelSwitchMs;
    while (!this.interruptFlag && this.alive && Date.now() < deadline) await this.wait(deadline - Date.now());
    this.checkInterrupt();
  }

  /** get_input_data: links read from the output cache, literals as validated. */
  private resolveInputs(run: SimPromptRun, nodeId: string): Record<string, unknown> {
    const node = run.item.prompt[nodeId];
    const types = NODE_DEFS.get(node.class_type)!.inputTypes(this.deps.env);
    const out: Record<string, unknown> = {};
    for (const name of [...Object.keys(types.required), ...Object.keys(types.optional ?? {})]) {
      if (!(name in node.inputs)) continue;
      const value = node.inputs[name];
      if (!Array.isArray(value) || value.length !== 2) {
        out[name] = value;
        continue;
      }
      const upstream = this.cache.get(String(value[0]));
      if (!upstream) throw new PyException('KeyError', `'${String(value[0])}'`);
      out[name] = upstream[value[1] as number];
    }
    return out;
  }

  private context(run: SimPromptRun, nodeId: string): NodeRunContext {
    const { config, hub } = this.deps;
    return {
      promptId: run.promptId,
      nodeId,
      prompt: run.item.prompt,
      extraData: run.extraData,
      env: this.deps.env,
      config,
      tempSuffix: this.deps.tempSuffix,
      checkInterrupt: () => this.checkInterrupt(),
      step: async (value: number, max: number, preview?: (maxSize: number) => SimImage) => {
        await this.stepTime();
        // ComfyUI's progress hook: interrupt check, progress_state (+ metadata preview), progress (+ legacy preview).
        this.checkInterrupt();
        run.updateNode(nodeId, value, max);
        const png = preview && config.previews ? encodePng(preview(config.previewMaxSize), { level: 1 }) : null;
        const withMetadata = hub.supportsPreviewMetadata(run.sid);
        if (png && withMetadata && this.alive) {
          const metadata = {
            node_id: nodeId,
            prompt_id: run.promptId,
            display_node_id: nodeId,
            parent_node_id: null,
            real_node_id: nodeId,
            image_type: 'image/png',
          };
          hub.sendBinary(previewFrameWithMetadata(png, metadata), run.sid);
        }
        run.toClientOrAll('progress', { value, max, prompt_id: run.promptId, node: nodeId });
        if (png && !withMetadata && this.alive) hub.sendBinary(previewFrame(png, 'image/png'), run.sid);
      },
    };
  }

  private errorData(
    run: SimPromptRun,
    nodeId: string,
    currentOutputs: string[],
    inputs: Record<string, unknown>,
    ex: PyException,
  ): JsonObject {
    const oom = /OutOfMemoryError/.test(ex.pyType);
    const currentInputs: JsonObject = {};
    for (const [name, value] of Object.entries(inputs)) currentInputs[name] = [formatValue(value)];
    return {
      prompt_id: run.promptId,
      node_id: nodeId,
      node_type: run.item.prompt[nodeId]?.class_type ?? '',
      executed: run.executed,
      exception_message: `${ex.message}\n${oom ? OOM_TIPS : ''}`,
      exception_type: ex.pyType,
      traceback: ex.traceback.length > 0 ? ex.traceback : GENERIC_TRACEBACK,
      current_inputs: currentInputs,
      current_outputs: currentOutputs,
    };
  }
}

function injectedError(fault: Extract<SimFault, { kind: 'execution-error' }>): PyException {
  if (fault.oom) {
    return new PyException(
      fault.exceptionType ?? 'torch.OutOfMemoryError',
      fault.message ??
        'CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free.',
    );
  }
  return new PyException(fault.exceptionType ?? 'RuntimeError', fault.message ?? 'simulated failure');
}

/** execution.format_value: scalars as they are, anything else (tensors, models) as its str(). */
function formatValue(value: unknown): unknown {
  if (value === null || ['number', 'string', 'boolean'].includes(typeof value)) return value;
  const first = Array.isArray(value) ? (value[0] as SimImage | undefined) : undefined;
  if (first?.data instanceof Float32Array) return torchRepr(value as SimImage[]);
  const kind = (value as { kind?: unknown }).kind;
  return `<${typeof kind === 'string' ? kind : 'object'}>`;
}

/** torch's str() of an IMAGE batch [B, H, W, C]; exact for small tensors, summarised like torch past 1000 values. */
function torchRepr(batch: SimImage[]): string {
  const { width, height } = batch[0];
  if (batch.length * width * height * 3 > 1000) return `tensor(<${batch.length}x${height}x${width}x3 float32>)`;
  const values = batch.flatMap((img) => Array.from(img.data));
  const integral = values.every((v) => Number.isInteger(v));
  const fmt = (v: number): string => (integral ? `${v}.` : v.toFixed(4));
  const rows = batch.map(
    (img) =>
      `[${Array.from({ length: height }, (_, y) => `[${Array.from({ length: width }, (_, x) => `[${[0, 1, 2].map((c) => fmt(img.data[(y * width + x) * 3 + c])).join(', ')}]`).join(', ')}]`).join(', ')}]`,
  );
  return `tensor([${rows.join(', ')}])`;
}
