/**
 * The runs behind measures 1 and 6: N jobs through (a) the whole pipeline, (b) the bare streams core with a no-op
 * handler, (c) BullMQ with a no-op processor — each in 1..P worker processes, on a given Redis, optionally with
 * INFO commandstats deltas and worker RSS samples.
 */
import 'reflect-metadata';
import { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { startApp } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { GenerationService } from '../../src/modules/generation/commands/generation.service';
import { StreamKeys } from '../../src/streams/stream-keys';
import { CpuMeter, type Child } from './children';
import type { BenchContext } from './context';
import { runLimited, sleep, waitFor } from './deadline';
import { appendRequests, echoInputs, idMs, readEvents, requestEnvelope } from './jobs';
import { percentile } from './stats';
import { bullConnection } from './bull-connection';
import { counterDelta, readCounters, type CounterDelta } from './redis-tools';

export interface RunOutcome {
  jobs: number;
  seconds: number;
  jobsPerSec: number;
  /** Per worker process: RSS after start-up, idle, and the highest sample under load (MB). */
  rssIdleMb: number[];
  rssLoadMb: number[];
  /** Share of one core each process used during the timed window (bench = this process, incl. the api role). */
  cpu: Record<string, number>;
  /** The same, unrounded: CPU seconds each process used in the timed window (runPipeline and the BullMQ pipeline). */
  cpuSeconds?: Record<string, number>;
  commands?: CounterDelta;
  /** Pipeline only: per-job stage latencies (ms, p50/p90/p99) from the stream entry ids of the timed jobs. */
  stages?: Record<string, { p50: number; p90: number; p99: number }>;
}

export async function redisPid(redis: Redis): Promise<number> {
  const m = /process_id:(\d+)/.exec(await redis.info('server'));
  return m ? Number(m[1]) : -1;
}

export function cpuMeter(children: readonly Child[], redis: number): CpuMeter {
  const pids: Record<string, number> = { bench: process.pid, redis };
  for (const c of children) pids[c.name] = c.pid;
  return new CpuMeter(pids);
}

/** Samples RSS of some children every 100 ms until stopped; keeps the maximum per child. */
export class RssSampler {
  readonly maxMb: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly children: readonly Child[]) {
    this.maxMb = children.map(() => 0);
    this.timer = setInterval(() => this.sample(), 100);
    this.sample();
  }

  private sample(): void {
    this.children.forEach((c, i) => {
      const rss = c.rssMb();
      if (rss !== null) this.maxMb[i] = Math.max(this.maxMb[i], rss);
    });
  }

  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.maxMb;
  }
}

/** Lets a just-started process settle (JIT, lazy connections), then reads its idle RSS. */
export async function idleRss(children: readonly Child[], settleMs = 1_000): Promise<number[]> {
  await sleep(settleMs);
  return children.map((c) => c.rssMb() ?? Number.NaN);
}

export interface TransportRunOptions {
  kind: 'streams' | 'bullmq';
  processes: number;
  jobs: number;
  redisUrl: string;
  concurrency?: number;
  countCommands?: boolean;
}

/**
 * Pre-fills N jobs with the same payload (the job.requested envelope), starts P worker processes, and on `go`
 * times the drain until every job is acknowledged / completed. Producer cost is not in the number: this is the
 * consumer side of the transport only.
 */
export async function runTransport(ctx: BenchContext, o: TransportRunOptions): Promise<RunOutcome> {
  const redis = ctx.redis(o.redisUrl);
  const prefix = ctx.prefix(`tp-${o.kind}`, o.redisUrl);
  const queueName = 'bench';
  const envelopes = Array.from({ length: o.jobs }, (_, i) => requestEnvelope(i, 'echo-invert', echoInputs(i)));
  const bullPrefix = prefix.slice(0, -1);
  let queue: Queue | undefined;
  const workers: Child[] = [];
  try {
    // Counted from before the fill: commands per job cover enqueue + consume for both systems.
    const before = o.countCommands ? await readCounters(redis) : undefined;
    if (o.kind === 'streams') {
      await appendRequests(redis, prefix, envelopes);
    } else {
      queue = new Queue(queueName, { connection: bullConnection(o.redisUrl), prefix: bullPrefix });
      for (let start = 0; start < envelopes.length; start += 1000) {
        await queue.addBulk(envelopes.slice(start, start + 1000).map((e) => ({ name: e.type, data: e })));
      }
    }
    for (let p = 0; p < o.processes; p++) {
      const child = ctx.children.spawn(
        `${o.kind}-noop-${p}`,
        ctx.options.tree.script('bench/children/noop-worker.ts'),
        {
          env: {
            ...ctx.options.tree.env(),
            REDIS_URL: o.redisUrl,
            KIND: o.kind,
            PREFIX: o.kind === 'bullmq' ? bullPrefix : prefix,
            QUEUE: queueName,
            CONSUMER: `noop-${p}`,
            CONCURRENCY: String(o.concurrency ?? 32),
          },
        },
      );
      workers.push(child);
    }
    for (const w of workers) await w.waitForLine(/^READY$/, 20_000);
    const rssIdleMb = await idleRss(workers, 500);
    const keys = new StreamKeys(prefix);
    let polls = 0;
    const done = async (): Promise<number> => {
      polls++;
      if (o.kind === 'bullmq') return redis.zcard(`${bullPrefix}:${queueName}:completed`);
      const groups = (await redis.xinfo('GROUPS', keys.requests)) as unknown[][];
      const gpu = groups.map((g) => toRecord(g)).find((g) => g.name === 'gpu');
      if (!gpu) return 0;
      return Number(gpu['entries-read'] ?? 0) - Number(gpu.pending ?? 0);
    };
    const sampler = new RssSampler(workers);
    const meter = cpuMeter(workers, await redisPid(redis));
    meter.begin();
    const t0 = performance.now();
    for (const w of workers) w.send('go');
    const { at } = await waitFor(`${o.kind} no-op drain of ${o.jobs}`, done, (n) => n >= o.jobs, {
      timeoutMs: 120_000,
      intervalMs: 5,
    });
    const cpu = meter.end();
    const rssLoadMb = sampler.stop();
    const after = o.countCommands ? await readCounters(redis) : undefined;
    const seconds = (at - t0) / 1000;
    // The BullMQ poll is one ZCARD (subtracted); ours is XINFO GROUPS (an observer command, not counted).
    const subtract: Record<string, number> = o.kind === 'bullmq' ? { zcard: polls } : {};
    return {
      jobs: o.jobs,
      seconds,
      jobsPerSec: o.jobs / seconds,
      rssIdleMb,
      rssLoadMb,
      cpu,
      ...(before && after ? { commands: counterDelta(before, after, subtract, polls + 3) } : {}),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await queue?.close();
  }
}

/** Jobs a pipeline run completes before its timed window (JIT, connections), unless told otherwise. */
export const WARMUP_JOBS = 20;

export interface PipelineRunOptions {
  processes: number;
  jobs: number;
  redisUrl: string;
  /** Simulated ComfyUI instances per gpu process (each process gets its own). */
  instancesPerProcess: number;
  warmupJobs?: number;
  countCommands?: boolean;
  profile?: boolean;
  /** NODE_OPTIONS for the gpu processes (e.g. V8 heap flags), to show what a flag changes. */
  gpuNodeOptions?: string;
  /** More environment for the projector and gpu processes (e.g. OTEL_* to run with tracing on). */
  childEnv?: Record<string, string>;
  /** Called as the timed window opens and as it closes (e.g. to count what an OTLP sink received inside it). */
  window?: { begin(): void; end(): void };
}

/**
 * The whole pipeline for zero-time jobs: submit (GenerationService, in this process: the api role) → claim (gpu
 * processes) → ComfyUI simulators with 0 ms steps (a separate process) → job.completed → projection (a projector
 * process). Timed from the first submit to the projection of the last job (`stats:run` completed counter).
 */
export async function runPipeline(ctx: BenchContext, o: PipelineRunOptions): Promise<RunOutcome> {
  const redis = ctx.redis(o.redisUrl);
  const prefix = ctx.prefix(`pipe-${o.processes}`, o.redisUrl);
  const keys = new StreamKeys(prefix);
  const started: Child[] = [];
  const gpus: Child[] = [];
  let api: Awaited<ReturnType<typeof startApp>> | undefined;
  try {
    const sims = await ctx.startSimulators('simulators', o.instancesPerProcess * o.processes, 0);
    started.push(sims.child);
    const common = {
      REDIS_URL: o.redisUrl,
      STREAM_PREFIX: prefix,
      USER_MAX_ACTIVE: '1000',
      CLAIM_IDLE_MS: '30000',
      ...o.childEnv,
    };
    started.push(await ctx.startApp(`projector-${o.processes}`, { ...common, ROLE: 'projector' }));
    for (let p = 0; p < o.processes; p++) {
      const urls = sims.urls.slice(p * o.instancesPerProcess, (p + 1) * o.instancesPerProcess);
      const gpu = await ctx.startApp(
        `gpu-${o.processes}-${p}`,
        {
          ...common,
          ROLE: 'gpu',
          COMFYUI_URLS: urls.join(','),
          ...(o.gpuNodeOptions ? { NODE_OPTIONS: o.gpuNodeOptions } : {}),
        },
        { profile: o.profile },
      );
      gpus.push(gpu);
      started.push(gpu);
    }
    api = await startApp(
      loadConfig({ ...common, ROLE: 'api', PORT: '0', LOG_LEVEL: 'silent', INSTANCE_NAME: 'bench-api' }),
      { host: '127.0.0.1' },
    );
    const generation = api.app.get(GenerationService);
    let submitted = 0;
    const submit = async (i: number): Promise<void> => {
      await generation.submit({
        workflow: 'echo-invert',
        inputs: echoInputs(submitted + i),
        userId: `bench-user-${i % 100}`,
        source: 'api',
      });
    };
    let polls = 0;
    const completed = async (): Promise<number> => {
      polls++;
      return Number((await redis.hget(keys.runStats, 'completed')) ?? 0);
    };
    const warmup = o.warmupJobs ?? WARMUP_JOBS;
    if (warmup > 0) {
      await runLimited(warmup, 8, submit, 30_000);
      submitted += warmup;
      await waitFor('pipeline warm-up', completed, (n) => n >= warmup, { timeoutMs: 60_000, intervalMs: 20 });
    }
    const rssIdleMb = await idleRss(gpus, 1_000);
    polls = 0;
    const before = o.countCommands ? await readCounters(redis) : undefined;
    const sampler = new RssSampler(gpus);
    const meter = cpuMeter(started, await redisPid(redis));
    o.window?.begin();
    meter.begin();
    const t0 = performance.now();
    const submitting = runLimited(o.jobs, 32, submit, 300_000);
    const { at } = await waitFor(`pipeline: projection of ${o.jobs} jobs`, completed, (n) => n >= warmup + o.jobs, {
      timeoutMs: 300_000,
      intervalMs: 10,
    });
    const cpu = meter.end();
    o.window?.end();
    await submitting;
    const rssLoadMb = sampler.stop();
    const after = o.countCommands ? await readCounters(redis) : undefined;
    const seconds = (at - t0) / 1000;
    return {
      jobs: o.jobs,
      seconds,
      jobsPerSec: o.jobs / seconds,
      rssIdleMb,
      rssLoadMb,
      cpu,
      cpuSeconds: meter.seconds,
      ...(before && after ? { commands: counterDelta(before, after, { hget: polls }, polls + 3) } : {}),
      stages: await stageLatencies(redis, prefix),
    };
  } finally {
    await api?.close().catch(() => undefined);
    await Promise.all(started.map((c) => c.stop()));
  }
}

/** requested → accepted → started → completed, from entry ids (ms clock of Redis), for every job of a prefix. */
async function stageLatencies(redis: Redis, prefix: string): Promise<RunOutcome['stages']> {
  const keys = new StreamKeys(prefix);
  const requested = new Map<string, number>();
  let start = '-';
  for (let page = 0; page < 1_000; page++) {
    const entries = await redis.xrange(keys.requests, start, '+', 'COUNT', 1000);
    for (const [id, fields] of entries) requested.set((JSON.parse(fields[1]) as { jobId: string }).jobId, idMs(id));
    if (entries.length < 1000) break;
    start = `(${entries[entries.length - 1][0]}`;
  }
  const at = new Map<string, Record<string, number>>();
  for (const e of await readEvents(redis, prefix)) at.set(e.jobId, { ...at.get(e.jobId), [e.type]: idMs(e.id) });
  const stages: Record<string, number[]> = {
    'requested→accepted': [],
    'accepted→started': [],
    'started→completed': [],
    'requested→completed': [],
  };
  for (const [jobId, t] of at) {
    const q = requested.get(jobId);
    const { 'job.accepted': a, 'job.started': s, 'job.completed': c } = t;
    if (q === undefined || a === undefined || s === undefined || c === undefined) continue;
    stages['requested→accepted'].push(a - q);
    stages['accepted→started'].push(s - a);
    stages['started→completed'].push(c - s);
    stages['requested→completed'].push(c - q);
  }
  return Object.fromEntries(
    Object.entries(stages).map(([k, v]) => [
      k,
      { p50: percentile(v, 50), p90: percentile(v, 90), p99: percentile(v, 99) },
    ]),
  );
}

/** CPU milliseconds per job summed over the measured processes (workers, Redis, the bench process). */
export function cpuMsPerJob(run: RunOutcome): number {
  const cores = Object.values(run.cpu).reduce((a, b) => a + b, 0);
  return (cores * run.seconds * 1000) / run.jobs;
}

export function toRecord(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
