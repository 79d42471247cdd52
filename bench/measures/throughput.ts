import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { cpuMsPerJob, runPipeline, runTransport, type RunOutcome } from '../lib/runs';
import { round } from '../lib/stats';

/**
 * 1. Throughput of zero-time jobs. Whole pipeline (1 and 2 gpu processes) and the bare streams core (no-op
 * handler), each against BullMQ's no-op worker with the same payload and process count, on the same Redis.
 */
export async function measureThroughput(ctx: BenchContext): Promise<MeasureResult[]> {
  const rows: MeasureResult[] = [];
  const transportJobs = ctx.quick ? 6_000 : 20_000;
  const pipelineJobs = ctx.quick ? 500 : 1_500;
  const reps = 3;
  const details: Record<string, unknown> = {};
  for (const processes of [1, 2]) {
    // Alternating repetitions, median of each: the machine may be shared, so neither side gets the quiet minute.
    const bullRuns: RunOutcome[] = [];
    const coreRuns: RunOutcome[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const jobs = transportJobs;
      bullRuns.push(await runTransport(ctx, { kind: 'bullmq', processes, jobs, redisUrl: ctx.redisUrl }));
      coreRuns.push(await runTransport(ctx, { kind: 'streams', processes, jobs, redisUrl: ctx.redisUrl }));
      await ctx.cleanup();
    }
    const bull = medianRun(bullRuns);
    const core = medianRun(coreRuns);
    details[`bullmq-noop-${processes}p`] = { median: bull, runsJobsPerSec: bullRuns.map((r) => round(r.jobsPerSec)) };
    details[`streams-noop-${processes}p`] = { median: core, runsJobsPerSec: coreRuns.map((r) => round(r.jobsPerSec)) };
    ctx.log(
      `  ${processes} process(es), no-op: BullMQ ${bullRuns.map((r) => round(r.jobsPerSec)).join(' / ')} jobs/s, ` +
        `streams core ${coreRuns.map((r) => round(r.jobsPerSec)).join(' / ')} jobs/s`,
    );
    const pipe = await runPipeline(ctx, {
      processes,
      jobs: pipelineJobs,
      redisUrl: ctx.redisUrl,
      instancesPerProcess: 4,
      profile: true,
    });
    details[`pipeline-${processes}p`] = pipe;
    ctx.log(`  whole pipeline, ${processes} gpu process(es): ${round(pipe.jobsPerSec)} jobs/s`);
    await ctx.cleanup();
    const baseline = { baseline: bull.jobsPerSec, baselineName: `BullMQ no-op, ${processes}p` };
    rows.push(
      result(1, `throughput: whole pipeline, ${processes} gpu process(es)`, pipe.jobsPerSec, 'jobs/s', {
        ...baseline,
        target: '≥ 1.5× BullMQ',
        pass: pipe.jobsPerSec >= 1.5 * bull.jobsPerSec,
        note: 'submit → claim → simulator (echo-invert 8×8, 0 ms) → completed → projection, vs a processor that does nothing',
      }),
      result(1, `throughput: streams core no-op, ${processes} process(es)`, core.jobsPerSec, 'jobs/s', {
        ...baseline,
        target: '≥ 1.5× BullMQ',
        pass: core.jobsPerSec >= 1.5 * bull.jobsPerSec,
        note: `transport only: XREADGROUP → no-op handler → XACK, pre-filled; median of ${reps}`,
      }),
    );
    if (processes === 1) {
      // Where the time goes: on 2 shared cores the pipeline is bound by CPU per job, summed over its processes.
      const bullCpu = { baseline: cpuMsPerJob(bull), baselineName: 'BullMQ no-op, worker + Redis' };
      rows.push(
        result(1, 'CPU per job, all processes: whole pipeline, 1 gpu process', cpuMsPerJob(pipe), 'ms', {
          ...bullCpu,
          note: `share of a core: ${Object.entries(pipe.cpu)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        }),
        result(1, 'CPU per job, all processes: streams core no-op, 1 process', cpuMsPerJob(core), 'ms', bullCpu),
      );
    }
  }
  ctx.details.throughput = details;
  return rows;
}

function medianRun(runs: RunOutcome[]): RunOutcome {
  const sorted = [...runs].sort((a, b) => a.jobsPerSec - b.jobsPerSec);
  return sorted[Math.floor(sorted.length / 2)];
}
