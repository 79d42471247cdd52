/** Work ahead counted one by one up to this many jobs; beyond, the rest is added as an average. */
const MAX_SIMULATED_JOBS = 20_000;

export interface FinishTimeInput {
  now: number;
  /** Instances that draw at once (each draws one job at a time; prompts queued inside one wait). */
  instances: number;
  /** Start times (ms) of the jobs drawing now. */
  drawingSince: readonly number[];
  /** Jobs taken but waiting on an instance, ahead of ours (ours excluded). */
  waitingTaken: number;
  /** Jobs in the queue ahead of ours. */
  queuedAhead: number;
  /** Expected drawing time of a job ahead (ms). */
  aheadMs: number;
  /** Expected drawing time of our job (ms). */
  ownMs: number;
  /** Our job is drawing since then (ms): the rest of its own run is all that is left. */
  ownDrawingSince?: number;
}

/**
 * When will the job finish (ms from now)? Replays what the instances will do: each drawing job ends when its
 * expected time is up (soon, if it has overrun), each job ahead takes the instance that frees first, and ours
 * starts when one frees after all of them. Exact for a burst of like jobs; as right as the learned run times.
 */
export function simulateFinishMs(input: FinishTimeInput): number {
  const soon = Math.max(1, input.aheadMs * 0.1);
  if (input.ownDrawingSince !== undefined) {
    return Math.max(Math.max(1, input.ownMs * 0.1), input.ownMs - (input.now - input.ownDrawingSince));
  }
  const remaining = [...input.drawingSince]
    .sort((a, b) => a - b)
    .map((since) => Math.max(soon, input.aheadMs - (input.now - since)));
  // More jobs drawing than instances advertised (an advert is stale): trust what is drawing.
  const count = Math.max(1, input.instances, remaining.length);
  const free = Array.from({ length: count }, (_, i) => remaining[i] ?? 0);
  let ahead = input.waitingTaken + input.queuedAhead;
  const simulated = Math.min(ahead, MAX_SIMULATED_JOBS);
  for (let i = 0; i < simulated; i++) free[earliest(free)] += input.aheadMs;
  ahead -= simulated;
  const start = free[earliest(free)] + (ahead * input.aheadMs) / count;
  return start + input.ownMs;
}

function earliest(free: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < free.length; i++) if (free[i] < free[best]) best = i;
  return best;
}
