import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { mean } from './stats';

/** One prompt's execution on a simulated instance, from its history (`execution_start` … `execution_success`). */
export interface Execution {
  promptId: string;
  start: number;
  end: number;
}

/**
 * Execution timestamps come from the simulator's public history: every entry's status.messages carry
 * `execution_start` and `execution_success|error|interrupted` with a millisecond `timestamp`, as ComfyUI's do. So
 * gaps have 1 ms resolution. (A finer hook would be an `onExecution(promptId, startHr, endHr)` callback option on
 * ComfyUiSimulator; see bench/README.md.)
 */
export async function executions(baseUrl: string): Promise<Execution[]> {
  const res = await fetch(`${baseUrl}/history?max_items=100000`, { signal: AbortSignal.timeout(10_000) });
  const history = (await res.json()) as Record<string, { status?: { messages?: [string, { timestamp?: number }][] } }>;
  const out: Execution[] = [];
  for (const [promptId, entry] of Object.entries(history)) {
    const messages = entry.status?.messages ?? [];
    const start = messages.find(([type]) => type === 'execution_start')?.[1].timestamp;
    const end = [...messages]
      .reverse()
      .find(([type]) =>
        ['execution_success', 'execution_error', 'execution_interrupted'].includes(type),
      )?.[1].timestamp;
    if (start !== undefined && end !== undefined) out.push({ promptId, start, end });
  }
  return out.sort((a, b) => a.start - b.start);
}

export interface Timeline {
  executions: number;
  /** Idle time between one prompt's end and the next one's start on the same instance (ms). */
  gaps: number[];
  /** Time executing ÷ time from the first start to the last end. */
  busyRatio: number;
  meanRunMs: number;
}

export function timeline(list: readonly Execution[]): Timeline {
  const gaps: number[] = [];
  for (let i = 1; i < list.length; i++) gaps.push(Math.max(0, list[i].start - list[i - 1].end));
  const busy = list.reduce((sum, e) => sum + (e.end - e.start), 0);
  const span = list.length > 0 ? list[list.length - 1].end - list[0].start : 0;
  return {
    executions: list.length,
    gaps,
    busyRatio: span > 0 ? busy / span : Number.NaN,
    meanRunMs: mean(list.map((e) => e.end - e.start)),
  };
}

/** Simulators in this process (their stats and history are read directly); stopped by the returned function. */
export async function startSims(
  count: number,
  options: ConstructorParameters<typeof ComfyUiSimulator>[0],
): Promise<{ sims: ComfyUiSimulator[]; urls: string[]; stop: () => Promise<void> }> {
  const sims: ComfyUiSimulator[] = [];
  const urls: string[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(sims.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      const sim = new ComfyUiSimulator(options);
      sims.push(sim);
      urls.push((await sim.start({ port: 0, host: '127.0.0.1' })).url);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { sims, urls, stop };
}
