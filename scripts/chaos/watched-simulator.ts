import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import type { SimFault, SimStats } from '../../src/tools/comfyui-sim/comfyui-sim.types';

export interface Rerun {
  instance: string;
  promptId: string;
  finishedAt: number;
  rerunAt: number;
  /** The instance crashed in between: its history was gone, so nobody could have known the prompt had finished. */
  afterCrash: boolean;
}

interface SimInternals {
  counters: { byPromptId: Map<string, number> };
  state: {
    queue: {
      taskDone(taskId: number, result: { status: { completed: boolean } }): void;
      running: Map<number, { promptId: string }>;
    };
  };
}

/**
 * A ComfyUI simulator in this process with an execution log: when each prompt_id started and when it finished
 * successfully. A prompt that starts again on an instance where it had already finished is the double GPU work
 * the executor's re-attach logic exists to prevent; the simulator itself only counts executions.
 */
export class WatchedSimulator {
  readonly sim: ComfyUiSimulator;
  private readonly finished = new Map<string, { at: number; epoch: number }>();
  private epoch = 0;
  readonly reruns: Rerun[] = [];
  crashes = 0;
  hangsArmed = 0;

  constructor(
    readonly name: string,
    options: ConstructorParameters<typeof ComfyUiSimulator>[0],
  ) {
    this.sim = new ComfyUiSimulator(options);
    const internals = this.sim as unknown as SimInternals;
    const starts = internals.counters.byPromptId;
    const set = starts.set.bind(starts);
    starts.set = (promptId: string, count: number) => {
      this.onStart(promptId);
      return set(promptId, count);
    };
    this.wrapQueue();
  }

  get url(): string {
    return this.sim.url;
  }

  async start(): Promise<void> {
    await this.sim.start({ port: 0, host: '127.0.0.1' });
  }

  /** The queue object is replaced by recover(): hook its taskDone again. */
  private wrapQueue(): void {
    const queue = (this.sim as unknown as SimInternals).state.queue;
    const taskDone = queue.taskDone.bind(queue);
    queue.taskDone = (taskId, result) => {
      const item = queue.running.get(taskId);
      if (item && result.status.completed) this.finished.set(item.promptId, { at: Date.now(), epoch: this.epoch });
      taskDone(taskId, result);
    };
  }

  private onStart(promptId: string): void {
    const done = this.finished.get(promptId);
    if (!done) return;
    this.reruns.push({
      instance: this.name,
      promptId,
      finishedAt: done.at,
      rerunAt: Date.now(),
      afterCrash: done.epoch !== this.epoch,
    });
  }

  inject(fault: SimFault): void {
    if (fault.kind === 'hang') this.hangsArmed += fault.times ?? 1;
    this.sim.inject(fault);
  }

  async crash(): Promise<void> {
    this.epoch++;
    this.crashes++;
    await this.sim.crash();
  }

  async recover(): Promise<void> {
    await this.sim.recover();
    this.wrapQueue();
  }

  stats(): SimStats {
    return this.sim.stats();
  }

  async stop(): Promise<void> {
    await this.sim.stop();
  }
}
