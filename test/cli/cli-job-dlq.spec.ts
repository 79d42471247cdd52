import { createHash } from 'node:crypto';
import { BLOB_STORE, type BlobStore } from '../../src/blobs/blob-store';
import { StreamKeys } from '../../src/streams/stream-keys';
import { testPng } from '../bot/support/bot-harness';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';
import { cli, completeJob, startFakeGpu, type GpuBehaviour } from './cli-harness';

const COMFY_ERROR = 'ComfyUI at http://127.0.0.1:8188 refused the connection (ECONNREFUSED)';

/** What a worker whose ComfyUI is down does: reports the failed attempt, then crashes out of the handler. */
const failAgainstDeadComfy: GpuBehaviour = async (event, ctx, publisher) => {
  const meta = { jobId: event.jobId, correlationId: event.correlationId, actor: ctx.consumer };
  const placement = { instance: 'http://127.0.0.1:8188', promptId: event.jobId };
  await publisher.publish('job.accepted', meta, { worker: ctx.consumer, attempt: ctx.deliveries, ...placement });
  await publisher.publish('job.failed', meta, {
    code: 'comfyui_unreachable',
    message: COMFY_ERROR,
    retriable: true,
    willRetry: ctx.deliveries < 2,
    attempt: ctx.deliveries,
  });
  throw new Error(`connect ECONNREFUSED 127.0.0.1:8188 (delivery ${ctx.deliveries})`);
};

describe('cli job + dlq: why a job failed, and re-driving it (real Redis)', () => {
  let app: TestApp;
  let gpu: StreamConsumer | undefined;
  const prefix = uniquePrefix('cli-dlq');

  beforeAll(async () => {
    app = await startTestApp({ ROLE: 'api,projector', MAX_DELIVERIES: '2', CLAIM_IDLE_MS: '100' }, prefix);
  });

  afterAll(async () => {
    await gpu?.close(500);
    await app.stop();
  });

  it('finds the reason in one call, re-drives once, and the new job links back to the dead letter', async () => {
    gpu = await startFakeGpu(app.redis, prefix, failAgainstDeadComfy);
    const created = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { width: 16, height: 16 } },
      headers: { 'x-user-id': 'carol' },
    });
    expect(created.status).toBe(202);
    const jobId: string = created.body.id;
    await pollUntil(
      async () => ({
        status: (await app.http(`/v1/generations/${jobId}`)).body.status,
        dlq: await app.redis.xlen(`${prefix}jobs:dlq`),
      }),
      (s) => s.status === 'failed' && s.dlq === 1,
      { description: 'job failed and dead-lettered', timeoutMs: 15_000 },
    );
    await gpu.close(500);
    gpu = undefined;

    // One call tells the operator what happened and why.
    const job = await cli(prefix, ['job', jobId]);
    expect(job.err).toBe('');
    expect(job.code).toBe(0);
    expect(job.out).toContain(`job ${jobId}  status failed`);
    expect(job.out).toContain('WHY IT FAILED: comfyui_unreachable');
    expect(job.out).toContain(COMFY_ERROR);
    expect(job.out).toMatch(/job\.requested .*gpu:dlq×2/);
    expect(job.out).toMatch(/Attempts \(2/);
    expect(job.out).toContain('ECONNREFUSED 127.0.0.1:8188 (delivery 1)');
    expect(job.out).toContain('ECONNREFUSED 127.0.0.1:8188 (delivery 2)');
    expect(job.out).toMatch(/Dead letters \(1\)/);

    const report = JSON.parse((await cli(prefix, ['job', jobId, '--json'])).out);
    expect(report.failure).toMatchObject({ code: 'comfyui_unreachable', final: true, attempt: 2 });
    expect(report.steps.map((s: { type: string }) => s.type)).toEqual([
      'job.requested',
      'job.accepted',
      'job.failed',
      'job.accepted',
      'job.failed',
      'job.dead-lettered',
    ]);
    expect(report.steps[0].deliveries).toEqual(
      expect.arrayContaining([{ group: 'gpu', state: 'dead-lettered', deliveries: 2 }]),
    );
    expect(report.attempts.map((a: { delivery: number }) => a.delivery)).toEqual([1, 2]);
    const dlqId: string = report.deadLetters[0].id;
    expect(report.deadLetters[0]).toMatchObject({ group: 'gpu', type: 'job.requested', jobId, deliveries: 2 });
    expect(job.out).toContain(`Next: npm run cli -- dlq redrive ${dlqId}`);

    const list = await cli(prefix, ['dlq', 'list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(new RegExp(`${dlqId} .* gpu .* job\\.requested .* ${jobId} +2 +- .*ECONNREFUSED`));

    // Re-drive with who and why; a healthy worker then runs the new job.
    gpu = await startFakeGpu(app.redis, prefix, completeJob, { name: 'gpu-test-2' });
    const redrive = await cli(prefix, ['dlq', 'redrive', dlqId, '--reason', 'ComfyUI restarted', '--by', 'alice']);
    expect(redrive.err).toBe('');
    expect(redrive.code).toBe(0);
    const newJobId = /as job ([0-9a-f-]{36})/.exec(redrive.out)?.[1];
    expect(newJobId).toBeDefined();
    expect(newJobId).not.toBe(jobId);

    const again = await cli(prefix, ['dlq', 'redrive', dlqId]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`already re-driven as job ${newJobId}`);
    expect(JSON.parse((await cli(prefix, ['dlq', 'redrive', '--all', '--json'])).out)).toEqual({
      redriven: [],
      skipped: [],
    });

    await pollUntil(
      () => app.http(`/v1/generations/${newJobId}`),
      (r) => r.body.status === 'succeeded',
      { description: 're-driven job succeeded', timeoutMs: 15_000 },
    );
    const redriven = await cli(prefix, ['job', newJobId!]);
    expect(redriven.code).toBe(0);
    expect(redriven.out).toContain('status succeeded');
    expect(redriven.out).toContain(`re-drive of DLQ entry ${dlqId} (job ${jobId}) by alice: ComfyUI restarted`);
    const redrivenReport = JSON.parse((await cli(prefix, ['job', newJobId!, '--json'])).out);
    const request = redrivenReport.steps[0];
    expect(request).toMatchObject({ type: 'job.requested', actor: 'operator:alice' });
    expect(request.envelope.correlationId).toBe(report.steps[0].envelope.correlationId);
    expect(request.envelope.payload).toMatchObject({
      source: 'redrive',
      redriveOf: dlqId,
      userId: 'api:anonymous:carol',
    });

    const original = await cli(prefix, ['job', jobId]);
    expect(original.out).toContain(`Re-driven: see  npm run cli -- job ${newJobId}`);
    expect(JSON.parse((await cli(prefix, ['dlq', 'list', '--json'])).out)[0]).toMatchObject({
      id: dlqId,
      redrivenAs: newJobId,
    });
  });

  it('a dead-lettered job keeps its input image for a re-drive; the new job holds it and releases it when done', async () => {
    await gpu?.close(500); // the healthy worker of the test before
    gpu = await startFakeGpu(app.redis, prefix, failAgainstDeadComfy, { name: 'gpu-test-images' });
    const keys = new StreamKeys(prefix);
    const image = testPng(12, 12, 77);
    const hash = createHash('sha256').update(image).digest('hex');
    const created = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'invert', inputs: { image: image.toString('base64') } },
    });
    expect(created.status).toBe(202);
    const jobId: string = created.body.id;
    await pollUntil(
      async () => ({
        status: (await app.http(`/v1/generations/${jobId}`)).body.status,
        dead: (await app.redis.xrange(`${prefix}jobs:dlq`, '-', '+')).some(([, f]) => f.join(' ').includes(jobId)),
      }),
      (s) => s.status === 'failed' && s.dead,
      { description: 'job failed and dead-lettered', timeoutMs: 15_000 },
    );
    await gpu.close(500);
    gpu = undefined;
    // A fault of the fleet: the input stays (held until BLOB_TTL_SECONDS) so the job can be re-driven.
    const blobs = app.app.get<BlobStore>(BLOB_STORE);
    expect(await blobs.exists(hash)).toBe(true);
    expect(await app.redis.zscore(keys.blobHolds(hash), `in:${jobId}`)).not.toBeNull();

    const dlqId = JSON.parse((await cli(prefix, ['dlq', 'list', '--json'])).out).find(
      (item: { jobId: string }) => item.jobId === jobId,
    ).id as string;
    gpu = await startFakeGpu(app.redis, prefix, completeJob, { name: 'gpu-test-images-2' });
    const redrive = await cli(prefix, ['dlq', 'redrive', dlqId, '--reason', 'fixed', '--by', 'bob']);
    expect(redrive.code).toBe(0);
    const newJobId = /as job ([0-9a-f-]{36})/.exec(redrive.out)![1]!;
    await pollUntil(
      () => app.http(`/v1/generations/${newJobId}`),
      (r) => r.body.status === 'succeeded',
      { description: 're-driven job succeeded', timeoutMs: 15_000 },
    );
    // The re-driven job held the image itself and let it go when it succeeded; the dead one's hold lapses alone.
    await pollUntil(
      () => app.redis.zrange(keys.blobHolds(hash), 0, -1),
      (holders) => !holders.includes(`in:${newJobId}`),
      { description: "the new job's hold released" },
    );
    expect(await app.redis.zrange(keys.blobHolds(hash), 0, -1)).toEqual([`in:${jobId}`]);
    expect(await blobs.exists(hash)).toBe(true);
    await gpu.close(500);
    gpu = undefined;
  });

  it('refuses what it cannot do: unknown job or DLQ entry (exit 1), bad ids (exit 2)', async () => {
    const unknown = await cli(prefix, ['job', '00000000-0000-0000-0000-000000000000']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no trace of job 00000000-0000-0000-0000-000000000000');
    expect((await cli(prefix, ['dlq', 'redrive', '1-1'])).err).toContain('no DLQ entry 1-1');
    expect((await cli(prefix, ['dlq', 'redrive', 'nope'])).code).toBe(2);
    expect((await cli(prefix, ['dlq', 'redrive'])).code).toBe(2);
    expect((await cli(prefix, ['dlq', 'redrive', '1-1', '--all'])).code).toBe(2);
    expect((await cli(prefix, ['job', 'bad id!'])).code).toBe(2);
  });
});
