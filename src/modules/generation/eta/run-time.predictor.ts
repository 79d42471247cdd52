import { workOf } from './run-cost';

/**
 * Before anything was measured: 750 ms per unit of work, i.e. 15 s for a 1-megapixel, 20-step image (a typical
 * SDXL image on one GPU) and under a second for a 64×64, 4-step one. Replaced by the first measured run.
 */
export const PRIOR_MS_PER_WORK = 750;

export interface LearnedRunTimes {
  /** Moving average of every recent run (ms): what a job ahead of ours, of any class, is expected to take. */
  recentMs?: number;
  /** ms per unit of work over every workflow. */
  perWork?: number;
  /** Moving average of this cost class (ms). */
  classMs?: number;
  /** ms per unit of work of this class's workflow. */
  workflowPerWork?: number;
}

/** A job's expected drawing time: measured for its class, else scaled from its workflow, every workflow, a prior. */
export function predictRunMs(learned: LearnedRunTimes, costKey: string): number {
  if (learned.classMs) return learned.classMs;
  const work = workOf(costKey);
  return work * (learned.workflowPerWork ?? learned.perWork ?? PRIOR_MS_PER_WORK);
}
