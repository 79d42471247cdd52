import { randomUUID } from 'node:crypto';
import { ComfyUiClient } from '../../src/modules/gpu/comfyui/comfyui.client';
import type { ComfyPrompt } from '../../src/modules/gpu/comfyui/comfyui.types';
import { bindWorkflow, WorkflowCatalog } from '../../src/workflows';
import { ROOT } from '../lib/build';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { waitFor, withDeadline } from '../lib/deadline';
import { appendRequests, countEvents, idMs, readEvents, requestEnvelope, txt2imgInputs } from '../lib/jobs';
import { executions, startSims, timeline, type Timeline } from '../lib/sim-timeline';
import { distribution } from '../lib/stats';
import { join } from 'node:path';

const STEPS = 10;

/**
 * 3. GPU idle gap: one simulated instance, N jobs of ~200 ms (txt2img, 10 steps × 20 ms) queued at once, run by one
 * gpu process (pipeline depth 2: the next prompt already waits in ComfyUI's queue). Gap = next prompt's start −
 * previous prompt's end on the instance. Baseline: a naive serial runner (submit, wait for the result, fetch the
 * image, submit the next) on an identical simulator.
 */
export async function measureIdleGap(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobs = ctx.quick ? 20 : 50;
  const stepMs = ctx.quick ? 10 : 20;
  const { timeline: ours, late } = await runPipelined(ctx, jobs, stepMs);
  const serial = await runSerial(jobs, stepMs);
  const o = distribution(ours.gaps);
  const s = distribution(serial.gaps);
  ctx.log(`  pipelined: gap p50 ${o.p50} ms, p99 ${o.p99} ms, busy ${(ours.busyRatio * 100).toFixed(1)} %`);
  ctx.log(`  serial:    gap p50 ${s.p50} ms, p99 ${s.p99} ms, busy ${(serial.busyRatio * 100).toFixed(1)} %`);
  ctx.log(`  gaps where the next prompt was not yet queued on the instance: ${late.length}`);
  ctx.details.idleGap = {
    jobs,
    jobMs: STEPS * stepMs,
    pipelined: { ...ours, gaps: o, gapsMs: ours.gaps, lateGapsMs: late },
    serial: { ...serial, gaps: s },
  };
  const base = (v: number) => ({ baseline: v, baselineName: 'naive serial runner' });
  return [
    result(3, `GPU idle gap p50 (${jobs} × ${STEPS * stepMs} ms jobs)`, o.p50, 'ms', base(s.p50)),
    result(3, 'GPU idle gap p99', o.p99, 'ms', { ...base(s.p99), target: '≤ 5 ms', pass: o.p99 <= 5 }),
    result(3, 'GPU idle gaps caused by a late next prompt', late.length, 'gaps', {
      target: '0',
      pass: late.length === 0,
      note: 'gaps whose next prompt was not yet queued on the instance (job.accepted after the previous end); other gaps are the instance itself',
    }),
    result(3, 'GPU busy ratio', ours.busyRatio * 100, '%', base(serial.busyRatio * 100)),
  ];
}

/**
 * Also returns the gaps the orchestrator could have caused: those whose next prompt was not queued on the instance
 * yet when the previous one ended (its job.accepted, appended after POST /prompt answered, is later than that end;
 * an upper bound for the queueing time, so this errs towards blaming us).
 */
async function runPipelined(
  ctx: BenchContext,
  jobs: number,
  stepMs: number,
): Promise<{ timeline: Timeline; late: number[] }> {
  const { sims, urls, stop } = await startSims(1, { stepMs });
  const prefix = ctx.prefix('idle-gap');
  try {
    const gpu = await ctx.startApp('gpu-idle-gap', {
      ROLE: 'gpu',
      STREAM_PREFIX: prefix,
      COMFYUI_URLS: urls[0],
      GPU_CONCURRENCY: '2',
    });
    try {
      const envelopes = Array.from({ length: jobs }, (_, i) => requestEnvelope(i, 'txt2img', txt2imgInputs(STEPS)));
      await appendRequests(ctx.redis(), prefix, envelopes);
      await waitFor(
        'idle gap: all prompts executed',
        () => sims[0].stats().succeeded,
        (n) => n >= jobs,
        {
          timeoutMs: jobs * STEPS * stepMs * 3 + 20_000,
          intervalMs: 20,
        },
      );
      await waitFor(
        'idle gap: all job.completed',
        () => countEvents(ctx.redis(), prefix, 'job.completed'),
        (n) => n >= jobs,
        { timeoutMs: 20_000, intervalMs: 50 },
      );
    } finally {
      await gpu.stop();
    }
    const list = await executions(urls[0]);
    const acceptedAt = new Map<string, number>();
    for (const e of await readEvents(ctx.redis(), prefix)) {
      if (e.type === 'job.accepted') acceptedAt.set(e.payload.promptId as string, idMs(e.id));
    }
    const late: number[] = [];
    for (let i = 1; i < list.length; i++) {
      const gap = list[i].start - list[i - 1].end;
      if (gap > 0 && (acceptedAt.get(list[i].promptId) ?? Infinity) > list[i - 1].end) late.push(gap);
    }
    return { timeline: timeline(list), late };
  } finally {
    await stop();
  }
}

async function runSerial(jobs: number, stepMs: number): Promise<Timeline> {
  const { urls, stop } = await startSims(1, { stepMs });
  const client = new ComfyUiClient({ baseUrl: urls[0], clientId: `bench-serial-${randomUUID().slice(0, 8)}` });
  try {
    const catalog = await WorkflowCatalog.loadDir(join(ROOT, 'workflows'));
    const template = catalog.get('txt2img')!;
    for (let i = 0; i < jobs; i++) {
      const { prompt } = bindWorkflow(template, { ...txt2imgInputs(STEPS), seed: i + 1 }, { uploadedImages: {} });
      const done = await withDeadline(
        'serial runner job',
        client.run(prompt as ComfyPrompt, { promptId: randomUUID() }),
        STEPS * stepMs * 10 + 10_000,
      );
      await client.view(done.images[0], { maxBytes: 64 * 1024 * 1024 });
    }
    return timeline(await executions(urls[0]));
  } finally {
    await client.close();
    await stop();
  }
}
