import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { PrivateRedis } from '../lib/redis-tools';
import { runShardedPipeline, type ShardedRunOutcome } from '../lib/sharded-run';
import { round } from '../lib/stats';
import { TestRedisCluster } from '../../test/support/redis-cluster';

const SHARDS = 6;

/**
 * 13. The whole pipeline on one primary and on a 3-primary Redis Cluster with STREAM_SHARDS=6, the same work in the
 * same run (one gpu process, 4 simulated instances, echo-invert 8×8 with 0 ms steps, 100 users): jobs/s of each, and
 * how evenly the commands spread over the primaries. On 2 shared cores the cluster cannot be faster (three servers
 * and six shards' readers on the same cores); what it buys is that no primary carries more than its share.
 */
export async function measureRedisCluster(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobs = ctx.quick ? 300 : 1_000;
  const common = { jobs, instances: 4 };
  const single = await PrivateRedis.start();
  if (!single) {
    ctx.log('  no redis-server to start: measure 13 skipped');
    return [];
  }
  let one: ShardedRunOutcome;
  try {
    const port = Number(new URL(single.url).port);
    one = await runShardedPipeline(ctx, {
      ...common,
      primaries: [{ host: '127.0.0.1', port }],
      cluster: false,
      shards: 1,
    });
  } finally {
    single.stop();
  }
  const cluster = await new TestRedisCluster(3).start();
  let three: ShardedRunOutcome;
  try {
    three = await runShardedPipeline(ctx, {
      ...common,
      primaries: cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      cluster: true,
      shards: SHARDS,
    });
  } finally {
    await cluster.stop();
  }
  const totals = Object.entries(three.perPrimary).map(([node, d]) => ({
    node,
    commands: d.total,
    cpu: d.cpuSeconds,
    top: d.byCommand.slice(0, 8).map(([name, n]) => `${name} ${round(n / three.jobs)}`),
  }));
  const all = totals.reduce((n, t) => n + t.commands, 0);
  const maxShare = all > 0 ? Math.max(...totals.map((t) => t.commands)) / all : 1;
  const perJob = (d: { commands: number; cpu: number }) =>
    `${round(d.commands / three.jobs)} cmds, ${round((d.cpu / three.jobs) * 1e6)} µs CPU`;
  const oneDelta = Object.values(one.perPrimary)[0]!;
  ctx.details.redisCluster = {
    jobsPerRun: jobs,
    shards: SHARDS,
    onePrimary: { jobsPerSec: round(one.jobsPerSec), commandsPerJob: round(oneDelta.total / jobs) },
    cluster: {
      jobsPerSec: round(three.jobsPerSec),
      perPrimary: Object.fromEntries(totals.map((t) => [t.node, { perJob: perJob(t), topCommandsPerJob: t.top }])),
    },
  };
  ctx.log(
    `  1 primary ${round(one.jobsPerSec)} jobs/s (${round(oneDelta.total / jobs)} cmds, ` +
      `${round((oneDelta.cpuSeconds / jobs) * 1e6)} µs Redis CPU per job); 3-primary cluster, ${SHARDS} shards ` +
      `${round(three.jobsPerSec)} jobs/s, per primary: ${totals.map(perJob).join(' | ')}`,
  );
  for (const t of totals) ctx.log(`    ${t.node}: ${t.top.join(', ')}`);
  return [
    result(13, 'throughput: whole pipeline, 1 primary', one.jobsPerSec, 'jobs/s', {
      note: `1 gpu process, 4 simulated instances, echo-invert 8×8, 0 ms steps, ${jobs} jobs, 100 users; a private redis-server`,
    }),
    result(13, 'throughput: whole pipeline, 3-primary cluster', three.jobsPerSec, 'jobs/s', {
      baseline: one.jobsPerSec,
      baselineName: '1 primary, same run',
      note:
        `STREAM_SHARDS=${SHARDS}, the same work; on 2 shared cores three servers and six shards' readers cannot be ` +
        `faster than one. Redis per job per primary: ${totals.map(perJob).join(' | ')}`,
    }),
    result(13, 'Redis commands per primary: max share', round(maxShare * 100), '%', {
      target: '≤ 40 %',
      pass: maxShare <= 0.4,
      note: `3 primaries, ${SHARDS} shards, 100 users; commands of the timed window per primary: ${totals.map((t) => t.commands).join(' / ')}`,
    }),
  ];
}
