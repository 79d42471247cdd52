import type { Rng } from './rng';

export type FaultStep =
  | { at: number; kind: 'kill'; target: string; restartAfterMs: number }
  | { at: number; kind: 'redis-restart'; downMs: number }
  | { at: number; kind: 'sim-hang'; instance: string; prompts: number }
  | { at: number; kind: 'sim-crash'; instance: string; recoverAfterMs: number }
  | { at: number; kind: 'poison' }
  | { at: number; kind: 'telegram-429'; forMs: number };

export interface FaultPlanOptions {
  windowMs: number;
  killEveryMs: readonly [number, number];
  restartAfterMs: readonly [number, number];
  /** How long a restarted process takes to serve again, for the plan's own bookkeeping (ready-checked at run time). */
  startupEstimateMs: number;
  gpus: readonly string[];
  bots: readonly string[];
  projectors: readonly string[];
  hangInstance: string;
  crashInstance: string;
}

/**
 * The fault schedule, fixed by the seed before the run starts. Kills keep the fleet able to make progress the way
 * an orchestrator would (one bot replica and one GPU worker stay up): the point is to lose processes at every
 * moment of a job's life, not to prove that nothing works with nothing running.
 */
export function planFaults(rng: Rng, o: FaultPlanOptions): FaultStep[] {
  const steps: FaultStep[] = [];
  const upAt = new Map<string, number>();
  const isUp = (name: string, t: number) => (upAt.get(name) ?? 0) <= t;
  for (let t = 3_000 + rng.int(0, 2_000); t < o.windowMs; t += rng.int(o.killEveryMs[0], o.killEveryMs[1])) {
    const candidates = [...o.gpus, ...o.bots, ...o.projectors].filter((name) => {
      if (!isUp(name, t)) return false;
      const peers = o.gpus.includes(name) ? o.gpus : o.bots.includes(name) ? o.bots : [];
      return peers.length === 0 || peers.some((p) => p !== name && isUp(p, t));
    });
    if (candidates.length === 0) continue;
    const target = rng.pick(candidates);
    const restartAfterMs = rng.int(o.restartAfterMs[0], o.restartAfterMs[1]);
    upAt.set(target, t + restartAfterMs + o.startupEstimateMs);
    steps.push({ at: t, kind: 'kill', target, restartAfterMs });
  }
  const around = (share: number) => Math.round(o.windowMs * share + rng.int(-1_000, 1_000));
  steps.push({ at: around(0.2), kind: 'sim-hang', instance: o.hangInstance, prompts: 3 });
  steps.push({ at: around(0.3), kind: 'poison' });
  steps.push({ at: around(0.45), kind: 'redis-restart', downMs: 2_000 });
  steps.push({ at: around(0.55), kind: 'telegram-429', forMs: 3_000 });
  steps.push({ at: around(0.6), kind: 'sim-crash', instance: o.crashInstance, recoverAfterMs: 6_000 });
  steps.push({ at: around(0.75), kind: 'poison' });
  return steps.sort((a, b) => a.at - b.at);
}

export function describeStep(step: FaultStep): string {
  const at = `t+${(step.at / 1000).toFixed(1)}s`;
  switch (step.kind) {
    case 'kill':
      return `${at} kill -9 ${step.target}, restart after ${step.restartAfterMs} ms`;
    case 'redis-restart':
      return `${at} kill -9 redis-server, restart from AOF after ${step.downMs} ms`;
    case 'sim-hang':
      return `${at} ${step.instance} hangs on its next ${step.prompts} prompts`;
    case 'sim-crash':
      return `${at} ${step.instance} crashes, recovers after ${step.recoverAfterMs} ms`;
    case 'poison':
      return `${at} malformed and hostile entries appended to jobs:requests and jobs:events`;
    case 'telegram-429':
      return `${at} the Bot API answers 429 (retry_after 1) for ${step.forMs} ms`;
  }
}
