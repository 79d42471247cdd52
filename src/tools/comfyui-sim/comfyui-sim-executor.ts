import { setImmediate as nextTick } from 'node:timers/promises';
import type { Logger } from '../../common/logger';
import { SimOutputCache } from './comfyui-sim-cache';
import { SimExecutionList } from './comfyui-sim-execution-list';
import type { SimFaultBook } from './comfyui-sim-faults';
import { encodePng } from './comfyui-sim-image';
import { PyException, pyFrame } from './comfyui-sim-python.util';
import type { SimPromptQueue } from './comfyui-sim-queue';
import { previewFrame, previewFrameWithMetadata, type SimSocketHub } from './comfyui-sim-socket-hub';
import type {
  JsonObject,
  SimFault,
  SimImage,
  SimPrompt,
  SimQueueItem,
  SimRuntimeConfig,
  StatusMessage,
} from './comfyui-sim.types';
import { NODE_DEFS } from './nodes/node-registry';
import type { NodeEnv, NodeRunContext, SimNodeDef } from './nodes/sim-node.types';

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

interface NodeProgress {
  value: number;
  max: number;
  state: 'running' | 'finished';
}

/**
 * The prompt worker (main.py prompt_worker + execution.PromptExecutor): one prompt at a time, messages in the
 * order and to the recipients the captures show.
 */
export class SimExecutor {
  /** server.client_id: who execution messages go to (null: nobody, except broadcasts). */
  clientId: string | null = null;
  lastNodeId: string | null = null;
  private runningPromptId: string | null = null;
  private interruptFlag = false;
  private stepTokens = 0;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  private readonly cache = new SimOutputCache();
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

  private emit(type: string, data: JsonObject, sid: string | null): void {
    if (this.alive) this.deps.hub.send(type, data, sid);
  }

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

  private assertAlive(): void {
    if (!this.alive) throw new ExecutorStopped();
  }

  private checkInterrupt(): void {
    this.assertAlive();
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
    const { counters, env, faults, config, hub } = this.deps;
    const promptId = item.promptId;
    const prompt = item.prompt;
    counters.executions++;
    counters.byPromptId.set(promptId, (counters.byPromptId.get(promptId) ?? 0) + 1);
    this.interruptFlag = false;
    this.runningPromptId = promptId;
    const extraData = { ...item.extraData, ...item.sensitive };
    const rawClient = extraData.client_id;
    const sid =
      rawClient === undefined || rawClient === null
        ? null
        : typeof rawClient === 'string'
          ? rawClient
          : JSON.stringify(rawClient);
    this.clientId = sid;

    const messages: StatusMessage[] = [];
    const addMessage = (event: string, data: JsonObject, broadcast: boolean): void => {
      const stamped = { ...data, timestamp: Date.now() };
      messages.push([event, stamped]);
      if (sid !== null || broadcast) this.emit(event, stamped, sid);
    };

    addMessage('execution_start', { prompt_id: promptId }, false);
    this.cache.setPrompt(prompt, env);
    const isCached = (id: string): boolean => this.cache.get(id) !== undefined;
    addMessage('execution_cached', { nodes: Object.keys(prompt).filter(isCached), prompt_id: promptId }, false);

    const progress = new Map<string, NodeProgress>();
    const sendProgressState = (): void => {
      const nodes: JsonObject = {};
      for (const [id, p] of progress) {
        nodes[id] = {
          value: p.value,
          max: p.max,
          state: p.state,
          node_id: id,
          prompt_id: promptId,
          display_node_id: id,
          parent_node_id: null,
          real_node_id: id,
        };
      }
      this.emit('progress_state', { prompt_id: promptId, nodes }, sid);
    };

    const list = new SimExecutionList(prompt, isCached);
    for (const output of item.outputsToExecute) list.addNode(output);
    const currentOutputs = [...new Set([...list.visitOrder, ...Object.keys(prompt)])];
    const executed: string[] = [];
    let outcome: 'success' | 'error' | 'interrupted' = 'success';
    const hang = faults.take('hang');
    const crash = faults.take('crash', (f) => f.at === 'running');
    let firstNode = true;

    while (!list.isEmpty()) {
      const nodeId = list.stage();
      if (nodeId === null) {
        addMessage(
          'execution_error',
          this.errorData(
            promptId,
            prompt,
            [...list.visitOrder][0] ?? '',
            executed,
            currentOutputs,
            {},
            new PyException('graph.DependencyCycleError', 'Dependency cycle detected'),
          ),
          false,
        );
        outcome = 'error';
        break;
      }
      const node = prompt[nodeId];
      const def = NODE_DEFS.get(node.class_type)!;
      if (isCached(nodeId)) {
        if (sid !== null) {
          const ui = this.cache.getUi(nodeId);
          this.emit(
            'executed',
            { node: nodeId, display_node: nodeId, output: ui?.output ?? null, prompt_id: promptId },
            sid,
          );
        }
        this.finishProgress(progress, nodeId);
        sendProgressState();
        list.complete(nodeId);
        continue;
      }
      progress.set(nodeId, { value: 0, max: 1, state: 'running' });
      sendProgressState();
      if (sid !== null) {
        this.lastNodeId = nodeId;
        this.emit('executing', { node: nodeId, display_node: nodeId, prompt_id: promptId }, sid);
      }
      let inputs: Record<string, unknown> = {};
      try {
        if (firstNode) {
          firstNode = false;
          if (crash) {
            this.deps.crash();
            throw new ExecutorStopped();
          }
          if (hang) while (!this.interruptFlag && this.alive) await this.wait(null);
        }
        inputs = this.resolveInputs(node.inputs, def);
        this.checkInterrupt();
        const injected = faults.take(
          'execution-error',
          (f) =>
            (f.nodeId === undefined || f.nodeId === nodeId) &&
            (f.classType === undefined || f.classType === node.class_type),
        );
        if (injected) throw injectedError(injected);
        const ctx = this.context(promptId, nodeId, prompt, extraData, sid, progress, sendProgressState, config, hub);
        const result = await def.run(ctx, inputs);
        this.assertAlive();
        this.cache.set(nodeId, result.outputs);
        if (result.ui) {
          this.cache.setUi(nodeId, {
            output: result.ui,
            meta: { node_id: nodeId, display_node: nodeId, parent_node: null, real_node_id: nodeId },
          });
          if (sid !== null) {
            this.emit('executed', { node: nodeId, display_node: nodeId, output: result.ui, prompt_id: promptId }, sid);
          }
        }
        this.finishProgress(progress, nodeId);
        sendProgressState();
        executed.push(nodeId);
        list.complete(nodeId);
      } catch (err) {
        if (err instanceof ExecutorStopped || !this.alive) throw new ExecutorStopped();
        if (err instanceof InterruptProcessing) {
          addMessage(
            'execution_interrupted',
            { prompt_id: promptId, node_id: nodeId, node_type: node.class_type, executed },
            true,
          );
          outcome = 'interrupted';
        } else {
          const ex =
            err instanceof PyException
              ? err
              : new PyException('Exception', err instanceof Error ? err.message : String(err));
          addMessage(
            'execution_error',
            this.errorData(promptId, prompt, nodeId, executed, currentOutputs, inputs, ex),
            false,
          );
          outcome = 'error';
        }
        break;
      }
    }
    if (outcome === 'success') addMessage('execution_success', { prompt_id: promptId }, false);

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
    if (outcome === 'success') counters.succeeded++;
    else if (outcome === 'error') counters.failed++;
    else counters.interrupted++;
    this.assertAlive();
    this.deps.queue.taskDone(taskId, {
      outputs,
      meta,
      status: { status_str: outcome === 'success' ? 'success' : 'error', completed: outcome === 'success', messages },
    });
    if (sid !== null) this.emit('executing', { node: null, prompt_id: promptId }, sid);
  }

  private finishProgress(progress: Map<string, NodeProgress>, nodeId: string): void {
    const entry = progress.get(nodeId) ?? { value: 0, max: 1, state: 'running' };
    progress.set(nodeId, { value: entry.max, max: entry.max, state: 'finished' });
  }

  private resolveInputs(literal: JsonObject, def: SimNodeDef): Record<string, unknown> {
    const types = def.inputTypes(this.deps.env);
    const out: Record<string, unknown> = {};
    for (const name of [...Object.keys(types.required), ...Object.keys(types.optional ?? {})]) {
      if (!(name in literal)) continue;
      const value = literal[name];
      if (Array.isArray(value) && value.length === 2) {
        const upstream = this.cache.get(String(value[0]));
        if (!upstream) throw new PyException('KeyError', `'${String(value[0])}'`);
        out[name] = upstream[value[1] as number];
      } else {
        out[name] = value;
      }
    }
    return out;
  }

  private context(
    promptId: string,
    nodeId: string,
    prompt: SimPrompt,
    extraData: JsonObject,
    sid: string | null,
    progress: Map<string, NodeProgress>,
    sendProgressState: () => void,
    config: SimRuntimeConfig,
    hub: SimSocketHub,
  ): NodeRunContext {
    return {
      promptId,
      nodeId,
      prompt,
      extraData,
      env: this.deps.env,
      config,
      tempSuffix: this.deps.tempSuffix,
      checkInterrupt: () => this.checkInterrupt(),
      step: async (value: number, max: number, preview?: (maxSize: number) => SimImage) => {
        await this.stepTime();
        // ComfyUI's progress hook: interrupt check, progress_state (+ metadata preview), progress (+ legacy preview).
        this.checkInterrupt();
        progress.set(nodeId, { value, max, state: 'running' });
        sendProgressState();
        const png = preview && config.previews ? encodePng(preview(config.previewMaxSize), { level: 1 }) : null;
        const withMetadata = hub.supportsPreviewMetadata(sid);
        if (png && withMetadata && this.alive) {
          const metadata = {
            node_id: nodeId,
            prompt_id: promptId,
            display_node_id: nodeId,
            parent_node_id: null,
            real_node_id: nodeId,
            image_type: 'image/png',
          };
          hub.sendBinary(previewFrameWithMetadata(png, metadata), sid);
        }
        this.emit('progress', { value, max, prompt_id: promptId, node: nodeId }, sid);
        if (png && !withMetadata && this.alive) hub.sendBinary(previewFrame(png, 'image/png'), sid);
      },
    };
  }

  private errorData(
    promptId: string,
    prompt: SimPrompt,
    nodeId: string,
    executed: string[],
    currentOutputs: string[],
    inputs: Record<string, unknown>,
    ex: PyException,
  ): JsonObject {
    const oom = /OutOfMemoryError/.test(ex.pyType);
    const currentInputs: JsonObject = {};
    for (const [name, value] of Object.entries(inputs)) currentInputs[name] = [formatValue(value)];
    return {
      prompt_id: promptId,
      node_id: nodeId,
      node_type: prompt[nodeId]?.class_type ?? '',
      executed,
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
  if (Array.isArray(value) && value.length > 0 && (value[0] as SimImage | undefined)?.data instanceof Float32Array) {
    const first = value[0] as SimImage;
    return `tensor(shape=[${value.length}, ${first.height}, ${first.width}, 3])`;
  }
  const kind = (value as { kind?: unknown }).kind;
  return `<${typeof kind === 'string' ? kind : 'object'}>`;
}
