import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { PrivateRedis } from '../lib/redis-tools';
import { runPipeline, runTransport, type RunOutcome } from '../lib/runs';
import { round } from '../lib/stats';

/**
 * 6. Redis commands per job (INFO commandstats delta ÷ jobs; commands run inside Lua scripts count, as they do in
 * commandstats) and Redis CPU per job, for the whole pipeline, the bare streams core and BullMQ's no-op worker; and
 * worker RSS (VmRSS) idle and under load. Counted on a private redis-server so other clients of the shared Redis
 * cannot inflate the counts; falls back to REDIS_URL (and says so) when redis-server is not installed.
 */
const SEMI_SPACE_FLAG = '--max-semi-space-size=2';

export async function measureFootprint(ctx: BenchContext): Promise<MeasureResult[]> {
  const pipelineJobs = ctx.quick ? 300 : 1_000;
  const transportJobs = ctx.quick ? 5_000 : 20_000;
  const server = await PrivateRedis.start();
  const url = server?.url ?? ctx.redisUrl;
  const where = server ? 'private redis-server' : 'shared REDIS_URL (counts may include other clients)';
  ctx.log(`  counting on ${where}`);
  let pipe: RunOutcome;
  let tuned: RunOutcome;
  let core: RunOutcome;
  let bull: RunOutcome;
  try {
    pipe = await runPipeline(ctx, {
      processes: 1,
      jobs: pipelineJobs,
      redisUrl: url,
      instancesPerProcess: 4,
      countCommands: true,
      // As shipped: `npm run start:prod` and the Dockerfile start node with this flag.
      gpuNodeOptions: SEMI_SPACE_FLAG,
    });
    // The same run with V8's default young generation, to show what the flag saves.
    tuned = await runPipeline(ctx, {
      processes: 1,
      jobs: pipelineJobs,
      redisUrl: url,
      instancesPerProcess: 4,
    });
    core = await runTransport(ctx, {
      kind: 'streams',
      processes: 1,
      jobs: transportJobs,
      redisUrl: url,
      countCommands: true,
    });
    bull = await runTransport(ctx, {
      kind: 'bullmq',
      processes: 1,
      jobs: transportJobs,
      redisUrl: url,
      countCommands: true,
    });
    await ctx.cleanup();
  } finally {
    ctx.forgetConnection(url);
    server?.stop();
  }
  const perJob = (r: RunOutcome) => (r.commands ? r.commands.total / r.jobs : Number.NaN);
  const readsPerJob = (r: RunOutcome) => (r.commands ? r.commands.reads / r.jobs : Number.NaN);
  const cpuPerJob = (r: RunOutcome) => (r.commands ? (r.commands.cpuSeconds / r.jobs) * 1e6 : Number.NaN);
  const breakdown = (r: RunOutcome) =>
    Object.fromEntries((r.commands?.byCommand ?? []).slice(0, 25).map(([name, n]) => [name, round(n / r.jobs)]));
  const usecBreakdown = (r: RunOutcome) =>
    Object.fromEntries((r.commands?.usecByCommand ?? []).slice(0, 25).map(([name, us]) => [name, round(us / r.jobs)]));
  ctx.details.footprint = {
    countedOn: where,
    pipeline: {
      jobs: pipe.jobs,
      commandsPerJob: perJob(pipe),
      roundTripsPerJob: readsPerJob(pipe),
      evalsPerJob: (pipe.commands?.evals ?? 0) / pipe.jobs,
      byCommand: breakdown(pipe),
      usecByCommand: usecBreakdown(pipe),
      redisCpuSysPerJobUs: pipe.commands ? (pipe.commands.cpuSysSeconds / pipe.jobs) * 1e6 : null,
      cpu: pipe.cpu,
    },
    streamsCore: {
      jobs: core.jobs,
      commandsPerJob: perJob(core),
      roundTripsPerJob: readsPerJob(core),
      byCommand: breakdown(core),
    },
    bullmq: {
      jobs: bull.jobs,
      commandsPerJob: perJob(bull),
      roundTripsPerJob: readsPerJob(bull),
      evalsPerJob: (bull.commands?.evals ?? 0) / bull.jobs,
      byCommand: breakdown(bull),
    },
    rss: {
      gpuIdle: pipe.rssIdleMb,
      gpuLoad: pipe.rssLoadMb,
      gpuIdleWithFlag: tuned.rssIdleMb,
      gpuLoadWithFlag: tuned.rssLoadMb,
      jobsPerSecDefault: pipe.jobsPerSec,
      jobsPerSecWithFlag: tuned.jobsPerSec,
      streamsCore: core.rssLoadMb,
      bullmq: bull.rssLoadMb,
    },
  };
  const bullCmd = { baseline: perJob(bull), baselineName: 'BullMQ no-op' };
  const bullCpu = { baseline: cpuPerJob(bull), baselineName: 'BullMQ no-op' };
  const gpuIdle = Math.max(...pipe.rssIdleMb);
  const gpuLoad = Math.max(...pipe.rssLoadMb);
  const bullIdle = Math.max(...bull.rssIdleMb);
  const bullLoad = Math.max(...bull.rssLoadMb);
  ctx.log(
    `  commands/job: pipeline ${round(perJob(pipe))}, streams core ${round(perJob(core))}, BullMQ ${round(perJob(bull))}; ` +
      `gpu RSS idle ${round(gpuIdle)} MB, under load ${round(gpuLoad)} MB`,
  );
  return [
    result(6, 'Redis commands per job: whole pipeline', perJob(pipe), 'cmds', {
      ...bullCmd,
      note: 'submit + gpu + projector, Lua-internal commands included',
    }),
    result(6, 'Redis commands per job: streams core no-op', perJob(core), 'cmds', bullCmd),
    result(6, 'Redis socket reads per job: whole pipeline', readsPerJob(pipe), 'reads', {
      baseline: readsPerJob(bull),
      baselineName: 'BullMQ no-op',
    }),
    result(6, 'Redis socket reads per job: streams core no-op', readsPerJob(core), 'reads', {
      baseline: readsPerJob(bull),
      baselineName: 'BullMQ no-op',
    }),
    result(6, 'Redis CPU per job: whole pipeline', cpuPerJob(pipe), 'µs', bullCpu),
    result(6, 'Redis CPU per job: streams core no-op', cpuPerJob(core), 'µs', bullCpu),
    result(6, 'worker RSS idle: gpu process', gpuIdle, 'MB', {
      baseline: bullIdle,
      baselineName: 'BullMQ no-op worker',
    }),
    result(6, `worker RSS under load: gpu process (as shipped, ${SEMI_SPACE_FLAG})`, gpuLoad, 'MB', {
      baseline: bullLoad,
      baselineName: 'BullMQ no-op worker',
      target: '≤ 130 MB',
      pass: gpuLoad <= 130,
    }),
    result(6, 'worker RSS under load: gpu process, default V8 flags', Math.max(...tuned.rssLoadMb), 'MB', {
      baseline: gpuLoad,
      baselineName: `gpu process with ${SEMI_SPACE_FLAG}`,
      note: 'what the flag saves',
    }),
    result(6, 'worker RSS under load: streams core no-op', Math.max(...core.rssLoadMb), 'MB', {
      baseline: bullLoad,
      baselineName: 'BullMQ no-op worker',
    }),
  ];
}
