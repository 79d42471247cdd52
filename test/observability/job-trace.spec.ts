import Redis from 'ioredis';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { spawnApp, type ChildApp } from '../bot/support/app-child';
import { waitForPolling, waitForResults } from '../bot/support/bot-harness';
import { cli } from '../cli/cli-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { freePort } from '../support/free-port';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const CLIENT = 3; // OTLP SpanKind: SPAN_KIND_CLIENT
const API = 'comfy-relay-api+projector';
const GPU = 'comfy-relay-gpu';
const BOT = 'comfy-relay-bot';

/**
 * Issue 17's "done when": with OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL=http/json pointed at a
 * local receiver, a job handled by separate api, gpu and bot processes yields spans of all three under one trace
 * id, each carrying comfy_relay.job_id; ComfyUI calls are child spans of the gpu's; `cli job` prints the trace id.
 */
describe('tracing: one trace per job across api, gpu and bot processes', () => {
  const receiver = new OtlpReceiver();
  const sim = new ComfyUiSimulator({ stepMs: 0 });
  const fake = new FakeTelegram();
  const prefix = uniquePrefix('trace');
  const redis = new Redis(TEST_REDIS_URL);
  const children: ChildApp[] = [];
  let apiUrl = '';

  beforeAll(async () => {
    const endpoint = await receiver.start();
    await sim.start({ port: 0, host: '127.0.0.1' });
    await fake.start();
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    const common = {
      STREAM_PREFIX: prefix,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Export within 100 ms instead of 5 s, so the test does not wait on the batch timer.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      TELEGRAM_BOT_TOKEN: fake.token,
    };
    children.push(spawnApp({ ...common, ROLE: 'api,projector', PORT: String(port), INSTANCE_NAME: 'api-1' }));
    children.push(spawnApp({ ...common, ROLE: 'gpu', COMFYUI_URLS: sim.url, INSTANCE_NAME: 'gpu-1' }));
    children.push(spawnApp({ ...common, ROLE: 'bot', TELEGRAM_API_ROOT: fake.url, INSTANCE_NAME: 'bot-1' }));
    await pollUntil(
      () =>
        fetch(`${apiUrl}/health/live`).then(
          (r) => r.status,
          () => 0,
        ),
      (status) => status === 200,
      { timeoutMs: 60_000, description: 'the api process up' },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${children.map((c) => c.output()).join('\n')}`);
    });
    await waitForPolling(fake, 0, 60_000);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop(5_000)));
    await receiver.stop();
    await sim.stop();
    await fake.stop();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  /** The spans of a job once the named ones have arrived (each process exports on its own schedule). */
  async function traceOf(jobId: string, required: [service: string, name: string][]): Promise<ReceivedSpan[]> {
    const spans = await pollUntil(
      () => receiver.spansOfJob(jobId),
      (s) => required.every(([service, name]) => s.some((span) => span.service === service && span.name === name)),
      { timeoutMs: 30_000, description: `spans ${JSON.stringify(required)} for job ${jobId}` },
    );
    const traceIds = new Set(spans.map((s) => s.traceId));
    expect(traceIds.size).toBe(1);
    return receiver.spans.filter((s) => s.traceId === spans[0]!.traceId);
  }

  it('an API job: spans of the api, gpu and bot processes under one trace id, all with the job id', async () => {
    const created = await fetch(`${apiUrl}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        workflow: 'txt2img',
        inputs: { prompt: 'a traced kite', width: 64, height: 64, steps: 2 },
      }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    await pollUntil(
      () => fetch(`${apiUrl}/v1/generations/${id}`).then((r) => r.json() as Promise<{ status?: string }>),
      (v) => v.status === 'succeeded',
      { timeoutMs: 30_000, description: 'the job succeeded' },
    );

    const trace = await traceOf(id, [
      [API, 'POST /v1/generations'],
      [GPU, 'gpu job.requested'],
      [BOT, 'bot job.completed'],
    ]);
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set([API, GPU, BOT]));
    for (const span of trace)
      expect({ span: span.name, jobId: span.attributes['comfy_relay.job_id'] }).toEqual({ span: span.name, jobId: id });
    // The submit is the API request's span; the gpu's claim-and-run continues it.
    const submit = trace.find((s) => s.service === API && s.name === 'POST /v1/generations')!;
    const run = trace.find((s) => s.service === GPU && s.name === 'gpu job.requested')!;
    expect(run.parentSpanId).toBe(submit.spanId);
    // ComfyUI calls (undici) are child spans of the run, with ComfyUI's address.
    const comfyCalls = trace.filter((s) => s.service === GPU && s.kind === CLIENT);
    expect(comfyCalls.length).toBeGreaterThan(0);
    expect(
      comfyCalls.some((s) => s.parentSpanId === run.spanId && String(s.attributes['url.full']).startsWith(sim.url)),
    ).toBe(true);
    // Each call carries the HTTP client conventions a trace viewer groups by, and its response status or, for a call
    // that failed before an answer (a stale keep-alive socket reset, then sent again), its error.
    const simAddress = new URL(sim.url);
    for (const call of comfyCalls) {
      expect(call.attributes).toMatchObject({
        'http.request.method': call.name,
        'server.address': simAddress.hostname,
        'server.port': Number(simAddress.port),
      });
      expect(call.attributes['http.response.status_code'] ?? call.attributes['error.type']).toBeDefined();
    }
    expect(comfyCalls.some((s) => typeof s.attributes['http.response.status_code'] === 'number')).toBe(true);

    // The lifecycle events the gpu appended were applied to the view there (inside its span): the projector only
    // acknowledges them, without a span of its own.
    expect(trace.filter((s) => s.name === 'projector job.started' || s.name === 'projector job.completed')).toEqual([]);

    const report = await cli(prefix, ['job', id]);
    expect(report.out).toContain(`trace ${run.traceId}`);
  }, 60_000);

  it('a Telegram job: submitted and delivered by the bot, run by the gpu, in one trace; no bot token in any span', async () => {
    const user = fake.user(7101);
    fake.sendText(user, 'a traced lighthouse');
    await waitForResults(fake, user.id);
    const request = await pollUntil(
      async () =>
        (await redis.xrange(`${prefix}jobs:requests`, '-', '+'))
          .map(([, fields]) => JSON.parse(fields[1]!) as { jobId: string; payload: { telegram?: { chatId: number } } })
          .find((e) => e.payload.telegram?.chatId === user.id),
      (e) => e !== undefined,
      { timeoutMs: 10_000, description: 'the Telegram job request' },
    );
    const trace = await traceOf(request!.jobId, [
      [BOT, 'job.requested publish'],
      [GPU, 'gpu job.requested'],
      [BOT, 'bot job.completed'],
    ]);
    const delivery = trace.find((s) => s.service === BOT && s.name === 'bot job.completed')!;
    const run = trace.find((s) => s.service === GPU && s.name === 'gpu job.requested')!;
    // The delivery continues the run that completed the job (the trace context came in job.completed's envelope).
    expect(delivery.parentSpanId).toBe(run.spanId);
    // Its Bot API calls have no spans of their own (no async context in the bot to make them children of it).
    expect(trace.filter((s) => s.service === BOT && s.kind === CLIENT)).toEqual([]);
    expect(JSON.stringify(receiver.spans)).not.toContain(fake.token.split(':')[1]!);
    expect(receiver.rejected).toEqual([]);
  }, 60_000);
});
