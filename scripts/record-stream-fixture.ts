/**
 * Records the job streams of a few real jobs into a JSON fixture, exactly as the running release writes them: a
 * succeeded txt2img job, an edit-style job with an input image, a node error (failed at once), an out-of-memory
 * job retried and then dead-lettered, and a job cancelled while it ran. test/streams/recorded-release.spec.ts
 * replays such a recording, so streams written by an older release keep decoding, projecting and showing in
 * `cli job` after the event schemas change. Local only: a simulator on 127.0.0.1 and the Redis of REDIS_URL.
 *
 *   npx ts-node --transpile-only scripts/record-stream-fixture.ts test/fixtures/<name>.json
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { encodePng } from '../src/common/png-encoder';
import { ComfyUiSimulator } from '../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../test/support/app-harness';
import { pollUntil } from '../test/support/poll-until';

const STREAMS = ['jobs:requests', 'jobs:requests:priority', 'jobs:events', 'jobs:dlq'] as const;

async function main(out: string): Promise<void> {
  const sim = new ComfyUiSimulator({ stepMs: 20 });
  await sim.start({ port: 0, host: '127.0.0.1' });
  const app = await startTestApp({
    ROLE: 'api,gpu,projector',
    COMFYUI_URLS: sim.url,
    MAX_DELIVERIES: '2',
    CLAIM_IDLE_MS: '300',
    USER_MAX_ACTIVE: '50',
  });
  try {
    const jobs: Record<string, string> = {};
    jobs.succeeded = await submit(app, txt2img('a lighthouse at dawn'));
    await waitStatus(app, jobs.succeeded, 'succeeded');

    const image = encodePng(16, 16, Buffer.alloc(16 * 16 * 4, 200)).toString('base64');
    jobs.withImage = await submit(app, { workflow: 'invert', inputs: { image } });
    await waitStatus(app, jobs.withImage, 'succeeded');

    sim.inject({ kind: 'execution-error', classType: 'KSampler', message: 'bad sampler config' });
    jobs.failed = await submit(app, txt2img('a node error'));
    await waitStatus(app, jobs.failed, 'failed');

    sim.inject({ kind: 'execution-error', classType: 'KSampler', oom: true, times: 5 });
    jobs.deadLettered = await submit(app, txt2img('out of memory twice'));
    await waitStatus(app, jobs.deadLettered, 'failed', 30_000);
    await pollUntil(
      () => app.redis.xlen(`${app.prefix}jobs:dlq`),
      (n) => n >= 1,
      { description: 'the dead letter' },
    );
    sim.clearFaults();

    jobs.cancelled = await submit(app, {
      ...txt2img('cancelled while drawing'),
      inputs: { prompt: 'slow', width: 64, height: 64, steps: 100 },
    });
    await waitStatus(app, jobs.cancelled, 'running');
    const cancel = await app.http(`/v1/generations/${jobs.cancelled}/cancel`, { method: 'POST' });
    if (cancel.status !== 202) throw new Error(`cancel answered ${cancel.status}`);
    await waitStatus(app, jobs.cancelled, 'cancelled', 30_000);

    const streams: Record<string, [string, string[]][]> = {};
    for (const stream of STREAMS) streams[stream] = await app.redis.xrange(`${app.prefix}${stream}`, '-', '+');
    const recording = {
      $comment: 'Raw stream entries (id, fields) as written by the release named below; see the script that made them.',
      recordedBy: 'scripts/record-stream-fixture.ts',
      release: execFileSync('git', ['rev-parse', 'HEAD']).toString().trim(),
      recordedAt: new Date().toISOString(),
      prefix: app.prefix,
      jobs,
      views: Object.fromEntries(
        await Promise.all(
          Object.entries(jobs).map(async ([name, id]) => [name, (await app.http(`/v1/generations/${id}`)).body]),
        ),
      ),
      streams,
    };
    writeFileSync(out, `${JSON.stringify(recording, null, 1)}\n`);
  } finally {
    await app.stop();
    await sim.stop();
  }
}

function txt2img(prompt: string) {
  return { workflow: 'txt2img', inputs: { prompt, width: 64, height: 64, steps: 2 } };
}

async function submit(app: TestApp, body: unknown): Promise<string> {
  const res = await app.http('/v1/generations', { method: 'POST', json: body });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

async function waitStatus(app: TestApp, id: string, status: string, timeoutMs = 15_000): Promise<void> {
  await pollUntil(
    async () => (await app.http(`/v1/generations/${id}`)).body.status as string,
    (s) => s === status,
    { timeoutMs, description: `job ${id} ${status}` },
  );
}

main(process.argv[2] ?? 'test/fixtures/recorded-stream.json').then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
