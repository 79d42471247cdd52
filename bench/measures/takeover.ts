import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { waitFor } from '../lib/deadline';
import { appendRequests, idMs, readEvents, requestEnvelope, txt2imgInputs, type StreamEvent } from '../lib/jobs';
import { executions, startSims } from '../lib/sim-timeline';

const STEPS = 10;
const CLAIM_IDLE_MS = 1_000;

/**
 * 5. Takeover. Two simulated instances (pipeline depth 2 → 4 slots), a gpu process "doomed" takes 4 jobs (2
 * running, 2 queued in ComfyUI), 2 more jobs wait in the stream; a second gpu process "survivor" starts (it reads
 * the 2 waiting jobs, which must wait for a free instance slot). Then the instances start running (300 ms per
 * prompt) and "doomed" is killed with SIGKILL at once. The instances finish its prompts on their own; the survivor
 * must claim the held entries after CLAIM_IDLE_MS, find the prompts on the instances (done, running or queued),
 * collect them without running them again, and then run the 2 waiting jobs.
 */
export async function measureTakeover(ctx: BenchContext): Promise<MeasureResult[]> {
  const stepMs = 30;
  const { sims, urls, stop } = await startSims(2, { stepMs, manualSteps: true });
  const prefix = ctx.prefix('takeover');
  const redis = ctx.redis();
  const env = {
    ROLE: 'gpu',
    STREAM_PREFIX: prefix,
    COMFYUI_URLS: urls.join(','),
    CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
  };
  try {
    const doomed = await ctx.startApp('doomed', env);
    const total = 6;
    await appendRequests(
      redis,
      prefix,
      Array.from({ length: total }, (_, i) => requestEnvelope(i, 'txt2img', txt2imgInputs(STEPS))),
    );
    await waitFor(
      'takeover: doomed holds 4 prompts (2 running, 2 queued on the instances)',
      async () => ({
        accepted: (await readEvents(redis, prefix)).filter((e) => e.type === 'job.accepted').length,
        sims: sims.map((s) => [s.stats().running !== null, s.stats().pending]),
      }),
      (v) => v.accepted >= 4 && v.sims.every(([running, pending]) => running === true && pending === 1),
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    const survivor = await ctx.startApp('survivor', env);
    try {
      for (const sim of sims) {
        sim.configure({ manualSteps: false, stepMs });
        sim.releaseSteps(1);
      }
      const killedAt = Date.now();
      await doomed.kill9();
      await waitFor(
        'takeover: every job completed',
        async () => (await readEvents(redis, prefix)).filter((e) => e.type === 'job.completed').length,
        (n) => n >= total,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      const events = await readEvents(redis, prefix);
      return await analyse(ctx, events, killedAt, sims, urls);
    } finally {
      await survivor.stop();
    }
  } finally {
    await stop();
  }
}

async function analyse(
  ctx: BenchContext,
  events: StreamEvent[],
  killedAt: number,
  sims: Awaited<ReturnType<typeof startSims>>['sims'],
  urls: string[],
): Promise<MeasureResult[]> {
  const byJob = new Map<string, StreamEvent[]>();
  for (const e of events) byJob.set(e.jobId, [...(byJob.get(e.jobId) ?? []), e]);
  const held: string[] = [];
  const queued: string[] = [];
  for (const [jobId, list] of byJob) {
    const firstAccept = list.find((e) => e.type === 'job.accepted');
    const doomedAccepted = workerOf(firstAccept).startsWith('gpu-doomed');
    const completedBeforeKill = list.some((e) => e.type === 'job.completed' && idMs(e.id) < killedAt);
    if (doomedAccepted && !completedBeforeKill) held.push(jobId);
    else if (!doomedAccepted) queued.push(jobId);
  }
  const completedAt = (jobId: string): number =>
    idMs(byJob.get(jobId)!.find((e) => e.type === 'job.completed')?.id ?? '0-0');
  const reclaimedAt = (jobId: string): number =>
    idMs(
      byJob.get(jobId)!.find((e) => e.type === 'job.accepted' && workerOf(e).startsWith('gpu-survivor'))?.id ?? '0-0',
    );
  const takeoverMs = Math.max(...held.map((j) => completedAt(j) - killedAt));
  const claimMs = Math.max(...held.map((j) => reclaimedAt(j) - killedAt));
  const allDoneMs = Math.max(...[...byJob.keys()].map((j) => completedAt(j) - killedAt));
  // Executions per job across every prompt id it was given (a fresh retry gets a new prompt id).
  const promptsOf = (jobId: string): Set<string> =>
    new Set(byJob.get(jobId)!.flatMap((e) => (e.type === 'job.accepted' ? [e.payload.promptId as string] : [])));
  const runsOf = (jobId: string): number =>
    [...promptsOf(jobId)].reduce((sum, p) => sum + sims.reduce((s, sim) => s + sim.executionCount(p), 0), 0);
  const extraRuns = [...byJob.keys()].reduce((sum, j) => sum + Math.max(0, runsOf(j) - 1), 0);
  const promptsTwice = sims.reduce(
    (sum, sim) => sum + Object.values(sim.stats().executionsByPromptId).filter((n) => n > 1).length,
    0,
  );
  const timelines = await Promise.all(urls.map((u) => executions(u)));
  const heldPrompts = new Set(held.flatMap((j) => [...promptsOf(j)]));
  const gpuDoneAt = Math.max(
    ...timelines
      .flat()
      .filter((e) => heldPrompts.has(e.promptId))
      .map((e) => e.end),
  );
  let idleAfterKill = 0;
  for (const list of timelines) {
    for (let i = 1; i < list.length; i++) {
      if (list[i - 1].end >= killedAt) idleAfterKill = Math.max(idleAfterKill, list[i].start - list[i - 1].end);
    }
  }
  const details = {
    claimIdleMs: CLAIM_IDLE_MS,
    heartbeatMs: Math.floor(CLAIM_IDLE_MS / 3),
    heldJobs: held.length,
    queuedJobs: queued.length,
    claimMs,
    takeoverMs,
    heldPromptsFinishedOnInstanceMs: gpuDoneAt - killedAt,
    allDoneMs,
    idleAfterKillMs: idleAfterKill,
    extraRuns,
    promptsTwice,
  };
  ctx.details.takeover = details;
  ctx.log(
    `  held ${held.length}: claimed by ${claimMs} ms, completed by ${takeoverMs} ms after the kill ` +
      `(instances had finished them at ${gpuDoneAt - killedAt} ms); extra runs ${extraRuns}; ` +
      `all ${byJob.size} done at ${allDoneMs} ms; longest GPU idle after the kill ${idleAfterKill} ms`,
  );
  const claim = { baseline: CLAIM_IDLE_MS, baselineName: 'CLAIM_IDLE_MS' };
  return [
    result(5, `takeover: kill -9 → ${held.length} held jobs completed by a peer`, takeoverMs, 'ms', {
      ...claim,
      target: '≤ 2× CLAIM_IDLE_MS',
      pass: takeoverMs <= 2 * CLAIM_IDLE_MS,
      note: `heartbeat every ${Math.floor(CLAIM_IDLE_MS / 3)} ms; claimed by ${claimMs} ms`,
    }),
    result(5, 'takeover: prompts run twice on the instances', extraRuns, 'runs', {
      target: '0 (prompts had finished or were queued)',
      pass: extraRuns === 0 && promptsTwice === 0,
    }),
    result(5, `takeover: kill -9 → all ${byJob.size} jobs done (incl. ${queued.length} waiting)`, allDoneMs, 'ms', {
      ...claim,
      note: 'the waiting jobs need instance slots the dead worker leased',
    }),
    result(5, 'takeover: longest GPU idle after the kill', idleAfterKill, 'ms', claim),
  ];
}

function workerOf(event: StreamEvent | undefined): string {
  const worker = event?.payload.worker;
  return typeof worker === 'string' ? worker : '';
}
