/**
 * Issue 11's baseline: the same work as the whole pipeline, built on BullMQ. The bench process is the producer
 * (inputs validated against the same workflow catalog, `Queue.add`, 32 in flight — as the api role submits in
 * runPipeline) and holds a QueueEvents listener that consumes every `completed` (with the stored blob refs); one
 * worker process (bench/children/bullmq-pipeline-worker.ts) runs the jobs on its own simulated ComfyUI instances
 * through the project's ComfyUiClient and stores each PNG in the project's blob store on Redis. Timed from the
 * first add to the listener's last `completed`, after a warm-up, with the same CPU meter as runPipeline.
 */
import { Queue, QueueEvents } from 'bullmq';
import { loadConfig } from '../../src/config/config.loader';
import { validateInputs, WorkflowCatalog } from '../../src/workflows';
import type { BullPipelineJobData } from '../children/bullmq-pipeline-worker';
import { bullConnection } from './bull-connection';
import type { Child } from './children';
import type { BenchContext } from './context';
import { runLimited, waitFor } from './deadline';
import { echoInputs } from './jobs';
import { counterDelta, readCounters } from './redis-tools';
import { cpuMeter, idleRss, redisPid, RssSampler, type RunOutcome } from './runs';

export interface BullPipelineRunOptions {
  jobs: number;
  redisUrl: string;
  /** Simulated ComfyUI instances (one simulator process), all served by the one worker process. */
  instances: number;
  warmupJobs?: number;
  /** INFO commandstats deltas over the timed window (on a private Redis, only the pipeline's own commands). */
  countCommands?: boolean;
}

export interface BullPipelineOutcome extends RunOutcome {
  /** `job.updateProgress` calls the worker made (one per ComfyUI `progress` message). */
  progressUpdates: number;
  /** PNGs the worker put in the blob store. */
  stored: number;
  /** `completed` events the listener saw whose return value names a stored blob. */
  completedWithBlob: number;
}

const QUEUE = 'generate';
const WORKFLOW = 'echo-invert';
/** BullMQ's usual retry settings, the counterpart of MAX_DELIVERIES (5). */
const JOB_OPTIONS = { attempts: 5, backoff: { type: 'exponential', delay: 1_000 } };

export async function runBullPipeline(ctx: BenchContext, o: BullPipelineRunOptions): Promise<BullPipelineOutcome> {
  const redis = ctx.redis(o.redisUrl);
  const prefix = ctx.prefix('bull-pipe', o.redisUrl);
  const bullPrefix = prefix.slice(0, -1);
  const connection = bullConnection(o.redisUrl);
  const config = loadConfig({ REDIS_URL: o.redisUrl });
  const template = (await WorkflowCatalog.loadDir(config.workflowsDir)).get(WORKFLOW);
  if (!template) throw new Error(`workflow ${WORKFLOW} not found in ${config.workflowsDir}`);
  const limits = { maxImageBytes: config.maxImageBytes, maxStringLength: config.maxPromptLength };
  const started: Child[] = [];
  let queue: Queue<BullPipelineJobData> | undefined;
  let events: QueueEvents | undefined;
  try {
    const sims = await ctx.startSimulators('simulators', o.instances, 0);
    started.push(sims.child);
    const worker = ctx.children.spawn(
      'bullmq-worker',
      ctx.options.tree.script('bench/children/bullmq-pipeline-worker.ts'),
      {
        env: {
          ...ctx.options.tree.env(),
          REDIS_URL: o.redisUrl,
          STREAM_PREFIX: prefix,
          BULL_PREFIX: bullPrefix,
          QUEUE,
          COMFYUI_URLS: sims.urls.join(','),
          CONCURRENCY: String(2 * o.instances),
        },
      },
    );
    started.push(worker);
    await worker.waitForLine(/^READY$/, 30_000);

    // The prefix is fresh, so reading its events stream from the start misses nothing between ready and first XREAD.
    events = new QueueEvents(QUEUE, { connection, prefix: bullPrefix, lastEventId: '0-0' });
    let completed = 0;
    let completedWithBlob = 0;
    let lastCompletedAt = 0;
    const failures: string[] = [];
    events.on('completed', ({ returnvalue }) => {
      completed++;
      lastCompletedAt = performance.now();
      const outputs = (returnvalue as unknown as { outputs?: { hash?: unknown }[] } | null)?.outputs;
      if (typeof outputs?.[0]?.hash === 'string') completedWithBlob++;
    });
    events.on('failed', ({ jobId, failedReason }) => failures.push(`job ${jobId}: ${failedReason}`));
    await events.waitUntilReady();
    queue = new Queue<BullPipelineJobData>(QUEUE, { connection, prefix: bullPrefix });
    await queue.waitUntilReady();

    let submitted = 0;
    const q = queue;
    const submit = async (i: number): Promise<void> => {
      const checked = validateInputs(template, echoInputs(submitted + i), limits);
      if (!checked.ok) throw new Error(`bench inputs rejected: ${JSON.stringify(checked.errors)}`);
      await q.add(
        WORKFLOW,
        { workflow: WORKFLOW, inputs: checked.values, userId: `bench-user-${i % 100}` },
        JOB_OPTIONS,
      );
    };
    const finished = (target: number) => (n: number) => n >= target || failures.length > 0;
    const warmup = o.warmupJobs ?? 20;
    if (warmup > 0) {
      await runLimited(warmup, 8, submit, 30_000);
      submitted += warmup;
      await waitFor('BullMQ pipeline warm-up', () => completed, finished(warmup), {
        timeoutMs: 60_000,
        intervalMs: 20,
      });
    }
    if (failures.length > 0) throw new Error(`BullMQ pipeline jobs failed: ${failures.slice(0, 3).join('; ')}`);
    const rssIdleMb = await idleRss([worker], 1_000);
    const before = o.countCommands ? await readCounters(redis) : undefined;
    const sampler = new RssSampler([worker]);
    const meter = cpuMeter(started, await redisPid(redis));
    meter.begin();
    const t0 = performance.now();
    const submitting = runLimited(o.jobs, 32, submit, 300_000);
    await waitFor(`BullMQ pipeline: ${o.jobs} completions`, () => completed, finished(warmup + o.jobs), {
      timeoutMs: 300_000,
      intervalMs: 5,
    });
    const cpu = meter.end();
    await submitting;
    const rssLoadMb = sampler.stop();
    const after = o.countCommands ? await readCounters(redis) : undefined;
    if (failures.length > 0) throw new Error(`BullMQ pipeline jobs failed: ${failures.slice(0, 3).join('; ')}`);
    const seconds = (lastCompletedAt - t0) / 1000;
    worker.send('stats');
    const [, statsJson] = await worker.waitForLine(/^STATS (.*)$/, 5_000);
    const stats = JSON.parse(statsJson) as { progressUpdates: number; stored: number };
    return {
      jobs: o.jobs,
      seconds,
      jobsPerSec: o.jobs / seconds,
      rssIdleMb,
      rssLoadMb,
      cpu,
      cpuSeconds: meter.seconds,
      // The listener and the bench's waits are in-process: the only observer commands are INFO (not counted).
      ...(before && after ? { commands: counterDelta(before, after, {}, 4) } : {}),
      progressUpdates: stats.progressUpdates,
      stored: stats.stored,
      completedWithBlob,
    };
  } finally {
    await queue?.close().catch(() => undefined);
    await events?.close().catch(() => undefined);
    await Promise.all(started.map((c) => c.stop()));
  }
}

/**
 * CPU ms per job over every measured process but the simulators (the ComfyUI stand-in, which does the same work
 * for both pipelines): the bench process (producer / api role), the workers, the projector, Redis.
 */
export function controlPlaneMsPerJob(run: RunOutcome): number {
  if (run.cpuSeconds) {
    const seconds = Object.entries(run.cpuSeconds)
      .filter(([name]) => name !== 'simulators')
      .reduce((sum, [, s]) => sum + s, 0);
    return (seconds * 1000) / run.jobs;
  }
  const cores = Object.entries(run.cpu)
    .filter(([name]) => name !== 'simulators')
    .reduce((sum, [, share]) => sum + share, 0);
  return (cores * run.seconds * 1000) / run.jobs;
}

/** The simulators' CPU ms per job (left out of the control plane; shown so the two runs can be compared). */
export function simulatorMsPerJob(run: RunOutcome): number {
  if (run.cpuSeconds) return ((run.cpuSeconds.simulators ?? 0) * 1000) / run.jobs;
  return ((run.cpu.simulators ?? 0) * run.seconds * 1000) / run.jobs;
}
