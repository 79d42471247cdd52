import { MetricsService } from '../../src/modules/metrics/metrics.service';
import { StreamKeys } from '../../src/streams/stream-keys';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { completeJob, startFakeGpu } from '../cli/cli-harness';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

/** Parses the Prometheus text format into `name{labels}` → value (labels in exposition order, role dropped). */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? '')
      .replace(/,?role="[^"]*"/, '')
      .replace(/^\{,/, '{')
      .replace('{}', '');
    samples.set(`${match[1]}${labels}`, Number(match[3]));
  }
  return samples;
}

describe('/metrics (real Redis, api + projector roles, stand-in gpu worker)', () => {
  let app: TestApp;
  let gpu: StreamConsumer | undefined;
  const prefix = uniquePrefix('metrics');

  beforeAll(async () => {
    app = await startTestApp({ ROLE: 'api,projector', API_KEYS: 'metrics-test-key-0123456789' }, prefix);
    app.app.get(MetricsService).watchConsumers(() => app.streams.stats());
  });

  afterAll(async () => {
    await gpu?.close(500);
    await app.stop();
  });

  const scrape = async () => {
    const res = await fetch(`${app.url}/metrics`); // no API key: /metrics is not behind it
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parse(await res.text());
  };

  it('changes as jobs flow: counters, timings, stream and consumer state, process memory', async () => {
    const before = await scrape();
    expect(before.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(before.get('comfy_relay_stream_stats_up')).toBe(1);
    expect(before.get('comfy_relay_jobs_submitted_total{workflow="echo-invert",source="api"}')).toBeUndefined();

    const submit = () =>
      app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: {} },
        headers: { authorization: 'Bearer metrics-test-key-0123456789' },
      });
    expect((await submit()).status).toBe(202);
    const queued = await pollUntil(scrape, (m) => m.get('comfy_relay_queue_length') === 1, {
      description: 'queue length 1',
    });
    expect(queued.get('comfy_relay_stream_length{stream="jobs:requests"}')).toBe(1);
    expect(queued.get('comfy_relay_jobs_submitted_total{workflow="echo-invert",source="api"}')).toBe(1);

    gpu = await startFakeGpu(app.redis, prefix, completeJob);
    await app.redis.hset(
      new StreamKeys(prefix).gpuWorkers,
      'test-worker:1',
      JSON.stringify({ slots: 2, expiresAt: Date.now() + 60_000 }),
    );
    const done = await pollUntil(
      scrape,
      (m) =>
        m.get('comfy_relay_jobs_completed_total{workflow="echo-invert"}') === 1 &&
        m.get('comfy_relay_stream_group_pending{stream="jobs:events",group="projector"}') === 0 &&
        m.get('comfy_relay_queue_length') === 0,
      { description: 'job completed and projected', timeoutMs: 15_000 },
    );
    expect(done.get('comfy_relay_job_queue_wait_seconds_count{workflow="echo-invert"}')).toBe(1);
    expect(done.get('comfy_relay_job_queue_wait_seconds_sum{workflow="echo-invert"}')).toBeCloseTo(1.5);
    expect(done.get('comfy_relay_job_run_seconds_bucket{le="5",workflow="echo-invert"}')).toBe(1);
    expect(done.get('comfy_relay_job_run_seconds_bucket{le="2",workflow="echo-invert"}')).toBe(0);
    expect(done.get('comfy_relay_stream_group_lag{stream="jobs:requests",group="gpu"}')).toBe(0);
    expect(done.get('comfy_relay_stream_group_consumers{stream="jobs:requests",group="gpu"}')).toBe(1);
    expect(done.get('comfy_relay_gpu_workers{state="live"}')).toBe(1);
    expect(done.get('comfy_relay_gpu_slots')).toBe(2);
    const processed = [...done].filter(([k]) => k.startsWith('comfy_relay_consumer_processed_total{group="projector"'));
    expect(processed.length).toBe(1);
    expect(processed[0]![1]).toBeGreaterThanOrEqual(4); // requested, accepted, started, completed
    expect(done.get('comfy_relay_jobs_running{comfyui="http://comfyui-test:8188"}')).toBeUndefined();
    await gpu.close(500);
    gpu = undefined;
  });

  it('counts failures by reason, dead letters, and the DLQ size', async () => {
    const keys = new StreamKeys(prefix);
    const publisher = new StreamPublisher(app.redis, keys);
    const meta = { jobId: 'job-oom', actor: 'gpu-x' };
    await publisher.publish('job.requested', meta, {
      workflow: 'txt2img',
      inputs: {},
      userId: 'u',
      source: 'telegram',
    });
    await publisher.publish('job.failed', meta, {
      code: 'oom',
      message: 'CUDA OOM',
      retriable: true,
      willRetry: true,
      attempt: 1,
    });
    await publisher.publish('job.accepted', meta, { worker: 'gpu-x', instance: 'c', promptId: 'p', attempt: 2 });
    await publisher.publish('job.failed', meta, {
      code: 'oom',
      message: 'CUDA OOM',
      retriable: true,
      willRetry: false,
      attempt: 2,
    });
    // A duplicate end (a redelivered handler) is not counted twice.
    await publisher.publish('job.failed', meta, {
      code: 'oom',
      message: 'CUDA OOM',
      retriable: true,
      willRetry: false,
      attempt: 2,
    });
    await app.redis.xadd(keys.dlq, '*', 'reason', 'test');
    const m = await pollUntil(
      scrape,
      (s) =>
        s.get('comfy_relay_jobs_failed_total{workflow="txt2img",reason="oom"}') === 1 &&
        s.get('comfy_relay_dlq_size') === 1,
      { description: 'failure counted' },
    );
    expect(m.get('comfy_relay_job_retries_total{workflow="txt2img",reason="oom"}')).toBe(1);
    expect(m.get('comfy_relay_job_redeliveries_total{workflow="txt2img"}')).toBe(1);
    expect(m.get('comfy_relay_jobs_submitted_total{workflow="txt2img",source="telegram"}')).toBe(1);
  });

  it('exports what the gpu and bot modules report through MetricsService', async () => {
    const metrics = app.app.get(MetricsService);
    const t0 = Date.now() - 30_000;
    metrics.comfyuiUp('http://gpu-a:8188', true);
    metrics.comfyuiUp('http://gpu-b:8188', false);
    metrics.comfyuiRunning('http://gpu-a:8188', 0, t0);
    metrics.comfyuiRunning('http://gpu-a:8188', 2, t0 + 15_000);
    metrics.telegramCall('sendPhoto', 'ok');
    metrics.telegramCall('sendPhoto', 'rate_limited', { retryAfterSeconds: 7 });
    const m = await scrape();
    expect(m.get('comfy_relay_comfyui_up{comfyui="http://gpu-a:8188"}')).toBe(1);
    expect(m.get('comfy_relay_comfyui_up{comfyui="http://gpu-b:8188"}')).toBe(0);
    expect(m.get('comfy_relay_comfyui_running_jobs{comfyui="http://gpu-a:8188"}')).toBe(2);
    expect(m.get('comfy_relay_comfyui_busy{comfyui="http://gpu-a:8188"}')).toBe(1);
    expect(m.get('comfy_relay_gpu_busy_ratio{comfyui="http://gpu-a:8188"}')).toBeCloseTo(0.5, 1);
    expect(m.get('comfy_relay_comfyui_busy_seconds_total{comfyui="http://gpu-a:8188"}')).toBeGreaterThanOrEqual(15);
    expect(m.get('comfy_relay_telegram_requests_total{method="sendPhoto",outcome="ok"}')).toBe(1);
    expect(m.get('comfy_relay_telegram_rate_limited_total{method="sendPhoto"}')).toBe(1);
    expect(m.get('comfy_relay_telegram_retry_after_seconds_count')).toBe(1);
  });
});
