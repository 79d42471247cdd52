import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { waitFor } from '../lib/deadline';
import { appendRequests, countEvents, requestEnvelope, txt2imgInputs } from '../lib/jobs';
import { executions, startSims, timeline } from '../lib/sim-timeline';
import { round } from '../lib/stats';

const STEPS = 10;

/**
 * 4. Scaling: one gpu process (GPU_CONCURRENCY = 2 × instances) in front of 1, 2, 4, 8 simulated instances, K jobs
 * per instance of a fixed nominal length (10 steps × stepMs), all queued at once. Throughput = jobs ÷ (first append →
 * last job.completed). Ideal = instances ÷ job time, with the job time the instances actually took (mean
 * execution_start → execution_success in their history): the simulator's timers and preview encoding make a
 * "500 ms" job run a little longer, and no orchestrator can beat the GPU's own run time. The nominal ratio is kept
 * in results.json details.
 */
export async function measureScaling(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobMs = ctx.quick ? 250 : 500;
  const perInstance = ctx.quick ? 4 : 6;
  const counts = ctx.quick ? [1, 2, 4] : [1, 2, 4, 8];
  const stepMs = jobMs / STEPS;
  const rows: MeasureResult[] = [];
  const details: Record<string, unknown> = {};
  for (const instances of counts) {
    const jobs = instances * perInstance;
    const { sims, urls, stop } = await startSims(instances, { stepMs });
    const prefix = ctx.prefix(`scaling-${instances}`);
    try {
      const gpu = await ctx.startApp(`gpu-scaling-${instances}`, {
        ROLE: 'gpu',
        STREAM_PREFIX: prefix,
        COMFYUI_URLS: urls.join(','),
        GPU_CONCURRENCY: String(2 * instances),
      });
      let seconds: number;
      try {
        const envelopes = Array.from({ length: jobs }, (_, i) => requestEnvelope(i, 'txt2img', txt2imgInputs(STEPS)));
        const t0 = performance.now();
        await appendRequests(ctx.redis(), prefix, envelopes);
        const { at } = await waitFor(
          `scaling ${instances}: all job.completed`,
          () => countEvents(ctx.redis(), prefix, 'job.completed'),
          (n) => n >= jobs,
          { timeoutMs: perInstance * jobMs * 4 + 20_000, intervalMs: 10 },
        );
        seconds = (at - t0) / 1000;
      } finally {
        await gpu.stop();
      }
      const perSim = await Promise.all(urls.map((u) => executions(u)));
      const runs = perSim.map((list) => timeline(list));
      const meanRunMs = runs.reduce((s, t) => s + t.meanRunMs, 0) / runs.length;
      const executed = sims.reduce((s, sim) => s + sim.stats().executions, 0);
      const throughput = jobs / seconds;
      const ideal = instances / (meanRunMs / 1000);
      const nominalIdeal = instances / (jobMs / 1000);
      ctx.log(
        `  ${instances} instance(s): ${round(throughput)} jobs/s of ideal ${round(ideal)} ` +
          `(${round(throughput / ideal)}×; mean run on the instance ${round(meanRunMs)} ms, ` +
          `${round(throughput / nominalIdeal)}× of the nominal ${jobMs} ms)`,
      );
      details[`${instances}`] = {
        jobs,
        seconds,
        throughput,
        ideal,
        nominalIdeal,
        meanRunMs,
        executed,
        busyRatio: runs.map((t) => t.busyRatio),
      };
      rows.push(
        result(4, `scaling: ${instances} instance(s), ${jobs} × ${jobMs} ms jobs`, throughput, 'jobs/s', {
          baseline: ideal,
          baselineName: `ideal: instances ÷ ${round(meanRunMs)} ms run time`,
          target: '≥ 0.95× ideal',
          pass: throughput >= 0.95 * ideal,
        }),
      );
    } finally {
      await stop();
    }
  }
  ctx.details.scaling = { jobMs, perInstance, runs: details };
  return rows;
}
