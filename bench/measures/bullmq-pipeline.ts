import {
  controlPlaneMsPerJob,
  runBullPipeline,
  simulatorMsPerJob,
  type BullPipelineOutcome,
} from '../lib/bull-pipeline';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { PrivateRedis } from '../lib/redis-tools';
import { runPipeline, type RunOutcome } from '../lib/runs';
import { round } from '../lib/stats';

/**
 * 11. The whole pipeline against the same work done through BullMQ (issue 11): 4 simulated instances (0 ms steps),
 * `echo-invert` 8×8 with a colour per job, one worker process on each side, alternating repetitions in one run on a
 * private redis-server (the shared Redis' CPU would include other sessions' commands); each figure is the median of
 * its side's repetitions. Control-plane CPU = every measured process and Redis, the simulators left out.
 */
export async function measureBullPipeline(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobs = ctx.quick ? 500 : 1_500;
  const reps = ctx.quick ? 3 : 5;
  const instances = 4;
  const ours: RunOutcome[] = [];
  const bull: BullPipelineOutcome[] = [];
  const server = await PrivateRedis.start();
  const redisUrl = server?.url ?? ctx.redisUrl;
  const where = server ? 'private redis-server' : 'shared REDIS_URL (Redis CPU may include other clients)';
  ctx.log(`  on ${where}`);
  try {
    for (let rep = 0; rep < reps; rep++) {
      // Who goes first alternates too: neither side always gets the quieter (or busier) minute.
      const runOurs = async (): Promise<void> => {
        ours.push(
          await runPipeline(ctx, { processes: 1, jobs, redisUrl, instancesPerProcess: instances, countCommands: true }),
        );
        await ctx.cleanup();
      };
      const runBull = async (): Promise<void> => {
        bull.push(await runBullPipeline(ctx, { jobs, redisUrl, instances, countCommands: true }));
        await ctx.cleanup();
      };
      if (rep % 2 === 0) {
        await runOurs();
        await runBull();
      } else {
        await runBull();
        await runOurs();
      }
      const o = ours[rep];
      const b = bull[rep];
      ctx.log(
        `  rep ${rep + 1}: whole pipeline ${round(o.jobsPerSec)} jobs/s, control plane ${round(controlPlaneMsPerJob(o))} ms/job ` +
          `(${perProcess(o)}); BullMQ pipeline ${round(b.jobsPerSec)} jobs/s, control plane ` +
          `${round(controlPlaneMsPerJob(b))} ms/job (${perProcess(b)})`,
      );
      ctx.log(`         Redis per job: whole pipeline ${redisPerJob(o)}; BullMQ pipeline ${redisPerJob(b)}`);
    }
  } finally {
    ctx.forgetConnection(redisUrl);
    server?.stop();
  }
  const oursJps = median(ours.map((r) => r.jobsPerSec));
  const bullJps = median(bull.map((r) => r.jobsPerSec));
  const oursCpu = median(ours.map(controlPlaneMsPerJob));
  const bullCpu = median(bull.map(controlPlaneMsPerJob));
  const progressUpdates = bull.reduce((n, r) => n + r.progressUpdates, 0);
  ctx.details.bullmqPipeline = {
    redis: where,
    instances,
    jobsPerRun: jobs,
    reps,
    wholePipeline: ours.map((r) => summary(r)),
    bullmqPipeline: bull.map((r) => ({
      ...summary(r),
      progressUpdates: r.progressUpdates,
      stored: r.stored,
      completedWithBlob: r.completedWithBlob,
    })),
  };
  const baselineName = `BullMQ pipeline (Worker + ComfyUiClient + blob store on Redis, QueueEvents), median of ${reps}`;
  return [
    result(11, 'throughput: whole pipeline vs BullMQ pipeline', oursJps, 'jobs/s', {
      baseline: bullJps,
      baselineName,
      target: '≥ 1× BullMQ pipeline',
      pass: oursJps >= bullJps,
      note:
        `${instances} simulated instances, echo-invert 8×8, 0 ms steps, ${jobs} jobs per run, 1 worker process each; ` +
        `runs: ours ${ours.map((r) => round(r.jobsPerSec)).join(' / ')}, BullMQ ${bull.map((r) => round(r.jobsPerSec)).join(' / ')} jobs/s`,
    }),
    result(11, 'control-plane CPU per job vs BullMQ pipeline', oursCpu, 'ms', {
      baseline: bullCpu,
      baselineName,
      target: '≤ 0.67× BullMQ pipeline',
      pass: oursCpu <= 0.67 * bullCpu,
      note:
        `every process + Redis, simulators left out; runs: ours ${ours.map((r) => round(controlPlaneMsPerJob(r))).join(' / ')}, ` +
        `BullMQ ${bull.map((r) => round(controlPlaneMsPerJob(r))).join(' / ')} ms; BullMQ updateProgress calls: ${progressUpdates}`,
    }),
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** CPU ms per job of each process (name without its numeric suffix; the simulators are not in the control plane). */
function perProcess(run: RunOutcome): string {
  return Object.entries(run.cpuSeconds ?? {})
    .map(([name, seconds]) => `${name.replace(/-[\d-]+$/, '')} ${round((seconds * 1000) / run.jobs)}`)
    .join(', ');
}

function redisPerJob(run: RunOutcome): string {
  const c = run.commands;
  if (!c) return 'not counted';
  return `${round(c.total / run.jobs)} cmds, ${round(c.reads / run.jobs)} reads, ${round((c.cpuSeconds / run.jobs) * 1e6)} µs CPU`;
}

function summary(run: RunOutcome): Record<string, unknown> {
  return {
    jobsPerSec: round(run.jobsPerSec),
    seconds: round(run.seconds),
    controlPlaneMsPerJob: round(controlPlaneMsPerJob(run)),
    simulatorMsPerJob: round(simulatorMsPerJob(run)),
    cpuMsPerJobByProcess: Object.fromEntries(
      Object.entries(run.cpuSeconds ?? {}).map(([name, s]) => [name, round((s * 1000) / run.jobs)]),
    ),
    rssIdleMb: run.rssIdleMb.map(round),
    rssLoadMb: run.rssLoadMb.map(round),
    ...(run.commands
      ? {
          redisCommandsPerJob: round(run.commands.total / run.jobs),
          redisSocketReadsPerJob: round(run.commands.reads / run.jobs),
          redisCpuMicrosPerJob: round((run.commands.cpuSeconds / run.jobs) * 1e6),
          topCommandsPerJob: Object.fromEntries(
            run.commands.byCommand.slice(0, 12).map(([name, n]) => [name, round(n / run.jobs)]),
          ),
        }
      : {}),
  };
}
