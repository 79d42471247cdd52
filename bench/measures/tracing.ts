import { installTracing } from '../../src/common/observability/observability.hooks';
import { startTracing, type StartedTracing } from '../../src/common/observability/otel-tracing';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { OtlpSink } from '../lib/otlp-sink';
import { cpuMsPerJob, runPipeline, WARMUP_JOBS, type RunOutcome } from '../lib/runs';
import { round } from '../lib/stats';

/**
 * 10. What tracing costs (issue 17): the whole pipeline of measure 1 (1 gpu process) with OpenTelemetry off and on,
 * alternating in the same run. On: every span sampled and exported over OTLP/HTTP (protobuf) to a local sink, from
 * the gpu and projector processes and from the api (this process: its tracing hooks are switched per run).
 *
 * What the timed window of an on run includes, and what it does not:
 * - both runs start fresh processes and warm up with the same WARMUP_JOBS jobs before the window opens; with tracing
 *   on those jobs' spans are made and ended then, but too few (≈ 3 per job in the gpu process) to fill a batch
 *   (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512), so nothing is exported before the window: each process's first export,
 *   with its cold encoder, is inside it;
 * - the standard batch settings (batches of 512 spans, 5 s delay): an export starts inside the window whenever 512
 *   spans are waiting, and the last, partial batch of each process is exported after the window closes (its
 *   shutdown). `exportedInWindow` in details.tracing is the spans the sink received while the windows were open over
 *   the spans their jobs made: 1 means the windows paid for exporting as many spans as they made;
 * - the sink counts what it receives in this process (a scan of the protobuf, no decoding into objects).
 */
export async function measureTracing(ctx: BenchContext): Promise<MeasureResult[]> {
  // Short runs, more of them: the median of alternating pairs is what survives a shared, busy machine.
  const jobs = ctx.quick ? 200 : 500;
  const reps = ctx.quick ? 3 : 5;
  const warmupJobs = WARMUP_JOBS;
  // With --cpu-prof, the gpu process of every run writes a profile (off and on alike, to compare).
  const profile = true;
  const sink = new OtlpSink();
  const endpoint = await sink.start();
  let api: StartedTracing | undefined;
  const off: RunOutcome[] = [];
  const on: RunOutcome[] = [];
  // Spans the sink received while the timed windows of the on runs were open: the export work those windows paid.
  let inWindow = 0;
  let openedAt = 0;
  const window = {
    begin: () => {
      openedAt = sink.spans;
    },
    end: () => {
      inWindow += sink.spans - openedAt;
    },
  };
  try {
    api = await startTracing({
      endpoint,
      protocol: 'http/protobuf',
      serviceName: 'comfy-relay-api',
      serviceVersion: 'bench',
      role: 'api',
      instance: 'bench-api',
      scrub: (text) => text,
    });
    const childEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
    for (let rep = 0; rep < reps; rep++) {
      installTracing(undefined);
      off.push(
        await runPipeline(ctx, {
          processes: 1,
          jobs,
          redisUrl: ctx.redisUrl,
          instancesPerProcess: 4,
          warmupJobs,
          profile,
        }),
      );
      await ctx.cleanup();
      installTracing(api.tracing);
      on.push(
        await runPipeline(ctx, {
          processes: 1,
          jobs,
          redisUrl: ctx.redisUrl,
          instancesPerProcess: 4,
          warmupJobs,
          childEnv,
          profile,
          window,
        }),
      );
      await ctx.cleanup();
      ctx.log(
        `  rep ${rep + 1}: tracing off ${round(off[rep]!.jobsPerSec)} jobs/s, on ${round(on[rep]!.jobsPerSec)} jobs/s` +
          ` (CPU ms/job off ${cpuByProcess(off[rep]!)}; on ${cpuByProcess(on[rep]!)})`,
      );
    }
  } finally {
    installTracing(undefined);
    await api?.shutdown();
    await sink.stop();
  }
  // Every job of an on run is traced, its warm-up too; the api's last spans arrived with its shutdown above.
  const tracedJobs = on.length * (jobs + warmupJobs);
  const spansPerJob = sink.spans / tracedJobs;
  // Exported inside the windows, against what the windows' jobs made: below 1, export work was left for after them.
  const exportedInWindow = inWindow / (spansPerJob * jobs * on.length);
  const offMedian = median(off);
  const onMedian = median(on);
  ctx.details.tracing = {
    offJobsPerSec: off.map((r) => round(r.jobsPerSec)),
    onJobsPerSec: on.map((r) => round(r.jobsPerSec)),
    // CPU per job of every process of the pipeline (the bench process is the api): where tracing's cost lands, and a
    // steadier figure than throughput on a shared machine.
    offCpuMsPerJob: off.map((r) => round(cpuMsPerJob(r))),
    onCpuMsPerJob: on.map((r) => round(cpuMsPerJob(r))),
    warmupJobs,
    exportedInWindow: round(exportedInWindow),
    exports: sink.requests,
    exportedBytes: sink.bytes,
    spansPerJob: round(sink.spans / tracedJobs),
    spansPerJobByName: Object.fromEntries(
      [...sink.spansByName].sort((a, b) => b[1] - a[1]).map(([name, n]) => [name, round(n / tracedJobs)]),
    ),
  };
  ctx.log(`  spans received: ${sink.spans}, ${round(sink.spans / tracedJobs)} per job (${tracedJobs} jobs traced)`);
  const note =
    `median of ${reps}, alternating, ${warmupJobs} warm-up jobs each; ${sink.requests} OTLP exports ` +
    `(${round(sink.bytes / 1024)} KiB) received, ${round(spansPerJob)} spans per job; spans exported inside the ` +
    `timed windows ${round(exportedInWindow)}× those their jobs made`;
  return [
    result(10, 'throughput: whole pipeline, tracing off', offMedian, 'jobs/s', {
      note: 'measure 1, 1 gpu process, OTEL_EXPORTER_OTLP_ENDPOINT unset (no SDK loaded)',
    }),
    result(10, 'throughput: whole pipeline, tracing on', onMedian, 'jobs/s', {
      baseline: offMedian,
      baselineName: 'tracing off, same run',
      target: '≥ 0.95× tracing off',
      pass: onMedian >= 0.95 * offMedian,
      note: `every span sampled, OTLP/HTTP protobuf to a local sink; ${note}`,
    }),
  ];
}

function median(runs: RunOutcome[]): number {
  const sorted = runs.map((r) => r.jobsPerSec).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** `gpu 6.2, projector 1.1, …, total 14.3`: CPU milliseconds per job of each measured process. */
function cpuByProcess(run: RunOutcome): string {
  const parts = Object.entries(run.cpu).map(
    ([name, share]) => `${name.replace(/-\d.*$/, '')} ${round((share * run.seconds * 1000) / run.jobs)}`,
  );
  return `${parts.join(', ')}, total ${round(cpuMsPerJob(run))}`;
}
