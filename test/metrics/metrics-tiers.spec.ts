import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { completeJob, startFakeGpu } from '../cli/cli-harness';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

const PRIORITY_KEY = 'metrics-tier-priority-0123456789ab';
const NORMAL_KEY = 'metrics-tier-normal-0123456789abcd';

/** Prometheus text → `name{labels}` → value (labels in exposition order, the role label dropped). */
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

/** Issue 14 item 5 (the part that needs no fair order): queue depth and wait time by tier on /metrics. */
describe('/metrics by tier: queue depth, oldest wait, wait-time histogram (real Redis)', () => {
  const prefix = uniquePrefix('mtiers');
  let app: TestApp;
  let gpu: StreamConsumer | undefined;

  beforeAll(async () => {
    app = await startTestApp(
      {
        ROLE: 'api,projector',
        API_KEYS: `${PRIORITY_KEY},${NORMAL_KEY}`,
        API_PRIORITY_KEYS: PRIORITY_KEY,
        USER_MAX_ACTIVE: '50',
      },
      prefix,
    );
  });

  afterAll(async () => {
    await gpu?.close(500);
    await app.stop();
  });

  const scrape = async () => {
    const res = await fetch(`${app.url}/metrics`); // from loopback: no key needed
    expect(res.status).toBe(200);
    return parse(await res.text());
  };
  const submit = (key: string, priority: boolean) =>
    app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: {}, ...(priority ? { priority: true } : {}) },
      headers: { authorization: `Bearer ${key}` },
    });

  it('counts queued jobs and their oldest wait per tier, then the wait of finished jobs per tier', async () => {
    const empty = await scrape();
    expect(empty.get('comfy_relay_queued_jobs{tier="normal"}')).toBe(0);
    expect(empty.get('comfy_relay_queued_jobs{tier="priority"}')).toBe(0);
    expect(empty.get('comfy_relay_queue_oldest_wait_seconds{tier="normal"}')).toBe(0);
    expect(empty.get('comfy_relay_queue_oldest_wait_seconds{tier="priority"}')).toBe(0);

    for (const [key, priority] of [
      [NORMAL_KEY, false],
      [NORMAL_KEY, false],
      [PRIORITY_KEY, true],
    ] as const) {
      expect((await submit(key, priority)).status).toBe(202);
    }
    // The waits grow while nobody takes the jobs.
    const queued = await pollUntil(
      scrape,
      (m) =>
        (m.get('comfy_relay_queue_oldest_wait_seconds{tier="normal"}') ?? 0) > 0.05 &&
        (m.get('comfy_relay_queue_oldest_wait_seconds{tier="priority"}') ?? 0) > 0.05,
      { description: 'both tiers waiting' },
    );
    expect(queued.get('comfy_relay_queued_jobs{tier="normal"}')).toBe(2);
    expect(queued.get('comfy_relay_queued_jobs{tier="priority"}')).toBe(1);
    expect(queued.get('comfy_relay_queue_length')).toBe(3);
    // The normal tier's head was submitted first: it has waited longer.
    expect(queued.get('comfy_relay_queue_oldest_wait_seconds{tier="normal"}')).toBeGreaterThanOrEqual(
      queued.get('comfy_relay_queue_oldest_wait_seconds{tier="priority"}')!,
    );

    gpu = await startFakeGpu(app.redis, prefix, completeJob); // reports queuedMs 1500 for every job
    const done = await pollUntil(
      scrape,
      (m) =>
        m.get('comfy_relay_job_queue_wait_by_tier_seconds_count{tier="normal"}') === 2 &&
        m.get('comfy_relay_job_queue_wait_by_tier_seconds_count{tier="priority"}') === 1 &&
        m.get('comfy_relay_queue_length') === 0,
      { description: 'all three finished', timeoutMs: 15_000 },
    );
    expect(done.get('comfy_relay_queued_jobs{tier="normal"}')).toBe(0);
    expect(done.get('comfy_relay_queued_jobs{tier="priority"}')).toBe(0);
    expect(done.get('comfy_relay_queue_oldest_wait_seconds{tier="normal"}')).toBe(0);
    expect(done.get('comfy_relay_job_queue_wait_by_tier_seconds_sum{tier="priority"}')).toBeCloseTo(1.5);
    expect(done.get('comfy_relay_job_queue_wait_by_tier_seconds_sum{tier="normal"}')).toBeCloseTo(3);
    expect(done.get('comfy_relay_job_queue_wait_by_tier_seconds_bucket{le="2",tier="priority"}')).toBe(1);
    expect(done.get('comfy_relay_job_queue_wait_by_tier_seconds_bucket{le="1",tier="priority"}')).toBe(0);
    // The per-workflow histogram is unchanged by the tiers (dashboards and alerts keep their queries).
    expect(done.get('comfy_relay_job_queue_wait_seconds_count{workflow="echo-invert"}')).toBe(3);
  });
});
