import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { waitFor } from '../lib/deadline';
import { appendRequests, countEvents, requestEnvelope, txt2imgInputs } from '../lib/jobs';
import { executions, startSims } from '../lib/sim-timeline';

const INSTANCES = 4;
const SWITCH_MS = 2_000;
const STEPS = 10;
const CHECKPOINTS = ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.safetensors'];

interface Run {
  switches: number;
  loads: number;
  spanMs: number;
  jobsPerSecond: number;
}

/**
 * 9. Model switches: a mixed stream of txt2img jobs over 2 checkpoints (the same pseudo-random order in both runs)
 * on 4 simulated instances that each have both, with a 2 s model-switch delay; one gpu process. Ours: placement
 * with model affinity (GPU_MODEL_AFFINITY=on, work-conserving). Baseline: today's least-loaded placement
 * (GPU_MODEL_AFFINITY=off), same run. Switches = loads that replaced another checkpoint (the simulator counts
 * them); time = first prompt start to last prompt end over all instances.
 */
export async function measureModelSwitches(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobs = ctx.quick ? 32 : 64;
  const stepMs = 20;
  const order = mixedOrder(jobs);
  const baseline = await runOnce(ctx, 'off', order, stepMs);
  const ours = await runOnce(ctx, 'on', order, stepMs);
  const switchRatio = baseline.switches > 0 ? ours.switches / baseline.switches : 0;
  const speedup = ours.jobsPerSecond / baseline.jobsPerSecond;
  ctx.log(`  round robin: ${baseline.switches} switches, ${(baseline.spanMs / 1000).toFixed(1)} s`);
  ctx.log(`  affinity:    ${ours.switches} switches, ${(ours.spanMs / 1000).toFixed(1)} s`);
  ctx.details.modelSwitches = {
    jobs,
    instances: INSTANCES,
    switchMs: SWITCH_MS,
    jobMs: STEPS * stepMs,
    baseline,
    ours,
  };
  const base = { baselineName: "today's placement (GPU_MODEL_AFFINITY=off)" };
  return [
    result(
      9,
      `model switches: affinity vs round robin (${jobs} jobs, 2 checkpoints, ${INSTANCES} instances)`,
      ours.switches,
      'switches',
      {
        ...base,
        baseline: baseline.switches,
        ratio: switchRatio,
        target: '≤ 0.25× round robin',
        pass: switchRatio <= 0.25,
      },
    ),
    result(9, 'model switches: throughput with affinity', ours.jobsPerSecond, 'jobs/s', {
      ...base,
      baseline: baseline.jobsPerSecond,
      target: '≥ 1.3× round robin',
      pass: speedup >= 1.3,
    }),
  ];
}

/** A fixed mix (a linear congruential sequence), so both runs see the same jobs in the same order. */
function mixedOrder(jobs: number): string[] {
  let x = 12345;
  return Array.from({ length: jobs }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return CHECKPOINTS[(x >> 16) % 2];
  });
}

async function runOnce(ctx: BenchContext, affinity: 'on' | 'off', order: string[], stepMs: number): Promise<Run> {
  const { sims, urls, stop } = await startSims(INSTANCES, { stepMs, modelSwitchMs: SWITCH_MS });
  const prefix = ctx.prefix(`model-switches-${affinity}`);
  try {
    const gpu = await ctx.startApp(`gpu-affinity-${affinity}`, {
      ROLE: 'gpu',
      STREAM_PREFIX: prefix,
      COMFYUI_URLS: urls.join(','),
      GPU_MODEL_AFFINITY: affinity,
    });
    try {
      const envelopes = order.map((checkpoint, i) =>
        requestEnvelope(i, 'txt2img', { ...txt2imgInputs(STEPS), checkpoint, seed: i + 1 }),
      );
      await appendRequests(ctx.redis(), prefix, envelopes);
      await waitFor(
        `model switches (${affinity}): all job.completed`,
        () => countEvents(ctx.redis(), prefix, 'job.completed'),
        (n) => n >= order.length,
        { timeoutMs: order.length * (SWITCH_MS + STEPS * stepMs) + 30_000, intervalMs: 100 },
      );
    } finally {
      await gpu.stop();
    }
    const runs = (await Promise.all(urls.map((url) => executions(url)))).flat();
    const spanMs = Math.max(...runs.map((r) => r.end)) - Math.min(...runs.map((r) => r.start));
    return {
      switches: sims.reduce((n, s) => n + s.stats().modelSwitches, 0),
      loads: sims.reduce((n, s) => n + s.stats().modelLoads, 0),
      spanMs,
      jobsPerSecond: order.length / (spanMs / 1000),
    };
  } finally {
    await stop();
  }
}
