/**
 * `npm run bench [-- --quick] [-- --only throughput,pickup] [-- --cpu-prof <dir>]`
 * Runs the measures of issue 7 against REDIS_URL and the ComfyUI simulator, each with its baseline in the same run,
 * prints a table, writes bench/results.json and the results block of bench/README.md.
 */
import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { buildBenchTree } from './lib/build';
import { BenchContext, type MeasureResult } from './lib/context';
import { withDeadline } from './lib/deadline';
import { collectEnvironment, writeReadmeBlock, writeResults, type Report } from './lib/results';
import { round } from './lib/stats';
import { renderTable } from './lib/table';
import { measureBlobMemory } from './measures/blob-memory';
import { measureBullPipeline } from './measures/bullmq-pipeline';
import { measureFailover } from './measures/failover';
import { measureFootprint } from './measures/footprint';
import { measureIdleGap } from './measures/idle-gap';
import { measureLatency } from './measures/latency';
import { measureModelSwitches } from './measures/model-switches';
import { measurePickup } from './measures/pickup';
import { measureRedisCluster } from './measures/redis-cluster';
import { measureScaling } from './measures/scaling';
import { measureTakeover } from './measures/takeover';
import { measureThroughput } from './measures/throughput';
import { measureTracing } from './measures/tracing';

type Measure = (ctx: BenchContext) => Promise<MeasureResult[]>;

const MEASURES: { key: string; title: string; run: Measure; budgetMs: { quick: number; full: number } }[] = [
  { key: 'throughput', title: '1. throughput', run: measureThroughput, budgetMs: { quick: 90_000, full: 300_000 } },
  { key: 'pickup', title: '2. idle pickup latency', run: measurePickup, budgetMs: { quick: 60_000, full: 180_000 } },
  { key: 'idle-gap', title: '3. GPU idle gap', run: measureIdleGap, budgetMs: { quick: 60_000, full: 120_000 } },
  { key: 'scaling', title: '4. scaling', run: measureScaling, budgetMs: { quick: 60_000, full: 180_000 } },
  { key: 'takeover', title: '5. takeover', run: measureTakeover, budgetMs: { quick: 60_000, full: 90_000 } },
  {
    key: 'footprint',
    title: '6. commands/job + RSS',
    run: measureFootprint,
    budgetMs: { quick: 90_000, full: 240_000 },
  },
  {
    key: 'blob-memory',
    title: '7. Redis memory per job, per blob backend',
    run: measureBlobMemory,
    budgetMs: { quick: 90_000, full: 180_000 },
  },
  {
    key: 'latency',
    title: '8. added latency + submit under burst',
    run: measureLatency,
    budgetMs: { quick: 240_000, full: 480_000 },
  },
  {
    key: 'model-switches',
    title: '9. model switches: affinity vs round robin',
    run: measureModelSwitches,
    budgetMs: { quick: 120_000, full: 240_000 },
  },
  {
    key: 'tracing',
    title: '10. throughput, tracing on vs off',
    run: measureTracing,
    budgetMs: { quick: 240_000, full: 480_000 },
  },
  {
    key: 'bullmq-pipeline',
    title: '11. whole pipeline vs BullMQ pipeline',
    run: measureBullPipeline,
    budgetMs: { quick: 180_000, full: 420_000 },
  },
  {
    key: 'failover',
    title: '12. Sentinel failover under load',
    run: measureFailover,
    budgetMs: { quick: 150_000, full: 420_000 },
  },
  {
    key: 'redis-cluster',
    title: '13. one primary vs a 3-primary Redis Cluster, 6 shards',
    run: measureRedisCluster,
    budgetMs: { quick: 180_000, full: 360_000 },
  },
];

interface Args {
  quick: boolean;
  only: Set<string> | null;
  cpuProfDir?: string;
  noReadme: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: null, noReadme: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') args.quick = true;
    else if (flag === '--only') args.only = new Set((argv[++i] ?? '').split(',').filter(Boolean));
    else if (flag === '--cpu-prof') args.cpuProfDir = resolve(argv[++i] ?? 'bench/profiles');
    else if (flag === '--no-readme') args.noReadme = true;
    else throw new Error(`unknown argument ${flag} (use --quick, --only a,b, --cpu-prof <dir>, --no-readme)`);
  }
  for (const key of args.only ?? []) {
    if (!MEASURES.some((m) => m.key === key)) throw new Error(`unknown measure ${key}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const started = performance.now();
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  if (args.cpuProfDir) mkdirSync(args.cpuProfDir, { recursive: true });
  const tree = buildBenchTree();
  log(
    `[bench] ${args.quick ? 'quick' : 'full'} run on ${redisUrl}; ${tree.files} files transpiled in ${Math.round(tree.buildMs)} ms`,
  );
  const ctx = new BenchContext({ quick: args.quick, redisUrl, tree, cpuProfDir: args.cpuProfDir, log });
  const rows: MeasureResult[] = [];
  const failures: string[] = [];
  const loads: Record<string, [number, number]> = {};
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) process.exit(130);
    stopping = true;
    log('[bench] interrupted: stopping children and cleaning up');
    void ctx.dispose().finally(() => {
      tree.remove();
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const environment = await collectEnvironment(ctx.redis());
    for (const measure of MEASURES) {
      if (args.only && !args.only.has(measure.key)) continue;
      const t = performance.now();
      const loadBefore = loadavg()[0];
      log(`[bench] ${measure.title}`);
      try {
        const budget = args.quick ? measure.budgetMs.quick : measure.budgetMs.full;
        rows.push(...(await withDeadline(measure.title, measure.run(ctx), budget)));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push(`${measure.title}: ${message}`);
        log(`[bench] ${measure.title} FAILED: ${message}`);
        await ctx.children.stopAll();
      } finally {
        await ctx.cleanup();
      }
      // The machine may be shared: keep the 1-minute load average around each measure next to its numbers.
      loads[measure.key] = [round(loadBefore), round(loadavg()[0])];
      log(`[bench] ${measure.title} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const report: Report = {
      generatedAt: new Date().toISOString(),
      mode: args.quick ? 'quick' : 'full',
      durationSeconds: Math.round((performance.now() - started) / 100) / 10,
      ...environment,
      results: rows,
      failures,
      details: { ...ctx.details, loadAverage1mAroundMeasures: loads },
    };
    const table = renderTable(rows);
    log('');
    log(table);
    for (const f of failures) log(`FAILED ${f}`);
    const file = writeResults(report, args.only !== null);
    log(`\n[bench] wrote ${file}`);
    if (!args.noReadme && !args.only && !args.quick) log(`[bench] updated ${writeReadmeBlock(report)}`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    await ctx.dispose();
    tree.remove();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
