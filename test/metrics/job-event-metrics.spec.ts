import { Registry } from 'prom-client';
import { BusyWindowTracker } from '../../src/modules/metrics/busy-window.tracker';
import { JobEventMetrics } from '../../src/modules/metrics/job-event.metrics';
import { LabelGuard } from '../../src/modules/metrics/label-guard';
import { makeEnvelope } from '../../src/streams/envelope.codec';
import type { JobEventPayloads, JobEventType } from '../../src/streams/job-event.types';

const event = <T extends JobEventType>(type: T, jobId: string, payload: JobEventPayloads[T]) =>
  makeEnvelope(type, { jobId, actor: 'test' }, payload) as never;

async function values(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? []) out[JSON.stringify(v.labels)] = v.value;
  return out;
}

describe('JobEventMetrics (counters folded from events)', () => {
  const requested = (jobId: string, workflow = 'txt2img') =>
    event('job.requested', jobId, { workflow, inputs: {}, userId: 'u', source: 'api' });

  it('counts each job end once, and a failure that will be retried as a retry', async () => {
    const registry = new Registry();
    const metrics = new JobEventMetrics(registry, async () => undefined, 60_000);
    await metrics.observe(requested('a'));
    await metrics.observe(event('job.failed', 'a', { code: 'oom', message: 'x', retriable: true, willRetry: true }));
    await metrics.observe(event('job.failed', 'a', { code: 'oom', message: 'x', retriable: true, willRetry: false }));
    await metrics.observe(
      event('job.dead-lettered', 'a', {
        stream: 's',
        group: 'gpu',
        entryId: '1-1',
        reason: 'r',
        deliveries: 5,
        endsJob: true,
      }),
    );
    await metrics.observe(requested('b'));
    const completed = event('job.completed', 'b', {
      outputs: [],
      instance: 'c',
      promptId: 'p',
      timings: { queuedMs: 3000, runMs: 12_000 },
    });
    await metrics.observe(completed);
    await metrics.observe(completed); // a redelivered handler appended it twice
    await metrics.observe(requested('c', 'edit'));
    await metrics.observe(event('job.cancelled', 'c', { by: 'u', whileQueued: false }));

    expect(await values(registry, 'comfy_relay_jobs_failed_total')).toEqual({
      '{"workflow":"txt2img","reason":"oom"}': 1,
    });
    expect(await values(registry, 'comfy_relay_job_retries_total')).toEqual({
      '{"workflow":"txt2img","reason":"oom"}': 1,
    });
    expect(await values(registry, 'comfy_relay_jobs_dead_lettered_total')).toEqual({ '{"group":"gpu"}': 1 });
    expect(await values(registry, 'comfy_relay_jobs_completed_total')).toEqual({ '{"workflow":"txt2img"}': 1 });
    expect(await values(registry, 'comfy_relay_jobs_cancelled_total')).toEqual({
      '{"workflow":"edit","reason":"running"}': 1,
    });
    const wait = await values(registry, 'comfy_relay_job_queue_wait_seconds');
    expect(wait['{"le":5,"workflow":"txt2img"}']).toBe(1);
    expect(wait['{"le":2,"workflow":"txt2img"}']).toBe(0);
  });

  it('finds the workflow of a job requested before it started tailing; unknown stays "unknown"', async () => {
    const registry = new Registry();
    const metrics = new JobEventMetrics(registry, async (jobId) => (jobId === 'old' ? 'edit' : undefined), 60_000);
    await metrics.observe(event('job.cancelled', 'old', { by: 'u', whileQueued: true }));
    await metrics.observe(event('job.cancelled', 'lost', { by: 'u', whileQueued: true }));
    expect(await values(registry, 'comfy_relay_jobs_cancelled_total')).toEqual({
      '{"workflow":"edit","reason":"queued"}': 1,
      '{"workflow":"unknown","reason":"queued"}': 1,
    });
  });

  it('tracks running jobs per ComfyUI instance and forgets ones whose end never came', async () => {
    const registry = new Registry();
    const metrics = new JobEventMetrics(registry, async () => undefined, 50);
    await metrics.observe(event('job.started', 'a', { worker: 'w', instance: 'http://c1:8188', promptId: 'p' }));
    await metrics.observe(
      event('job.started', 'b', { worker: 'w', instance: 'http://c1:8188', promptId: 'p' }),
      Date.now() - 1000,
    );
    expect(await values(registry, 'comfy_relay_jobs_running')).toEqual({ '{"comfyui":"http://c1:8188"}': 1 });
  });
});

describe('BusyWindowTracker', () => {
  it('reports busy seconds and the busy fraction of the window', () => {
    const t = new BusyWindowTracker(60_000, 0);
    t.set(true, 10_000);
    t.set(false, 40_000);
    t.set(true, 50_000);
    expect(t.busySecondsTotal(60_000)).toBe(40);
    expect(t.ratio(60_000)).toBeCloseTo(40 / 60);
    expect(t.ratio(120_000)).toBe(1); // busy since 50 s: the whole last minute
    t.set(false, 120_000);
    expect(t.ratio(200_000)).toBe(0);
  });
});

describe('LabelGuard', () => {
  it('caps distinct values and trims long ones', () => {
    const guard = new LabelGuard(2);
    expect(guard.value('a')).toBe('a');
    expect(guard.value('b')).toBe('b');
    expect(guard.value('c')).toBe('other');
    expect(guard.value('a')).toBe('a');
    expect(guard.value(undefined)).toBe('other');
    expect(new LabelGuard(5).value('x'.repeat(100))).toHaveLength(64);
  });
});
