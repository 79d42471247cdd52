import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ComfyUiClient } from '../../src/modules/gpu/comfyui/comfyui.client';
import type { ComfyPrompt } from '../../src/modules/gpu/comfyui/comfyui.types';
import { StreamKeys } from '../../src/streams/stream-keys';
import { bindWorkflow, WorkflowCatalog } from '../../src/workflows';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { runLimited, sleep, withDeadline } from '../lib/deadline';
import { idMs, readEvents } from '../lib/jobs';
import { distribution, percentile, round } from '../lib/stats';

const ROOT = join(__dirname, '..', '..');
const SIZE = 64;
const POLL_MS = 2;

/**
 * 8. What the service adds to one job, and how the API answers under a burst.
 * Added latency: a 64×64 echo-invert job straight to a simulator instance (ComfyUI client: POST /prompt, its
 * WebSocket, GET /view) against the same job through the service (`ROLE=all` child process in front of the same
 * instance: POST /v1/generations, GET every 2 ms until succeeded, GET …/result), alternating, one at a time.
 * Burst: POST → 202 while N jobs are submitted 64 at a time to that process.
 */
export async function measureLatency(ctx: BenchContext): Promise<MeasureResult[]> {
  const rounds = ctx.quick ? 40 : 150;
  const burst = ctx.quick ? 500 : 2_000;
  const sims = await ctx.startSimulators('latency-sims', 2, 0);
  const prefix = ctx.prefix('latency');
  const app = await ctx.startApp(
    'latency-app',
    {
      ROLE: 'all',
      STREAM_PREFIX: prefix,
      COMFYUI_URLS: sims.urls.join(','),
      USER_MAX_ACTIVE: '1000',
      CLAIM_IDLE_MS: '30000',
    },
    { profile: true },
  );
  const url = /^READY (\S+)/.exec(app.lines.find((l) => l.startsWith('READY ')) ?? '')![1]!;
  const http = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  const client = new ComfyUiClient({ baseUrl: sims.urls[0]!, clientId: `bench-direct-${randomUUID().slice(0, 8)}` });
  const catalog = await WorkflowCatalog.loadDir(join(ROOT, 'workflows'));
  const template = catalog.get('echo-invert')!;
  const direct: number[] = [];
  const service: number[] = [];
  const clientStages: Record<string, number[]> = { 'POST→202': [], '202→succeeded seen': [], 'result fetched': [] };
  const serviceJobs: { id: string; postAt: number; acceptedAt: number; seenAt: number; fetchedAt: number }[] = [];
  try {
    const color = (i: number) => (i * 2654435761) % 0xffffff;
    const runDirect = async (i: number) => {
      const { prompt } = bindWorkflow(template, { width: SIZE, height: SIZE, color: color(i) }, { uploadedImages: {} });
      const t0 = performance.now();
      const done = await client.run(prompt as ComfyPrompt, { promptId: randomUUID() });
      await client.view(done.images[0]!, { maxBytes: 16 * 1024 * 1024 });
      return performance.now() - t0;
    };
    const runService = async (i: number) => {
      const postAt = Date.now();
      const t0 = performance.now();
      const created = await call(http, `${url}/v1/generations`, 'POST', {
        workflow: 'echo-invert',
        inputs: { width: SIZE, height: SIZE, color: color(i) },
      });
      const acceptedAt = Date.now();
      const t202 = performance.now();
      const id = (created as { id: string }).id;
      let resultUrl = '';
      for (let polls = 0; ; polls++) {
        const view = (await call(http, `${url}/v1/generations/${id}`, 'GET')) as {
          status: string;
          result?: { url: string }[];
        };
        if (view.status === 'succeeded') {
          resultUrl = view.result![0]!.url;
          break;
        }
        if (view.status === 'failed' || view.status === 'cancelled' || polls > 10_000) {
          throw new Error(`job ${id} ${view.status}`);
        }
        await sleep(POLL_MS);
      }
      const seenAt = Date.now();
      const tSeen = performance.now();
      await fetchBytes(http, `${url}${resultUrl}`);
      const t1 = performance.now();
      clientStages['POST→202']!.push(t202 - t0);
      clientStages['202→succeeded seen']!.push(tSeen - t202);
      clientStages['result fetched']!.push(t1 - tSeen);
      serviceJobs.push({ id, postAt, acceptedAt, seenAt, fetchedAt: Date.now() });
      return t1 - t0;
    };
    for (let i = 0; i < 10; i++) {
      await runDirect(10_000 + i);
      await runService(20_000 + i);
    }
    serviceJobs.length = 0;
    for (const k of Object.keys(clientStages)) clientStages[k] = [];
    await withDeadline(
      'latency rounds',
      (async () => {
        for (let i = 0; i < rounds; i++) {
          // Alternating (and the order flipping each round), so drift of the machine hits both alike.
          if (i % 2 === 0) {
            direct.push(await runDirect(i));
            service.push(await runService(i));
          } else {
            service.push(await runService(i));
            direct.push(await runDirect(i));
          }
        }
      })(),
      240_000,
    );
    const stages = await serverStages(ctx, prefix, serviceJobs);

    // Burst: POST → 202 under 64 concurrent submitters.
    const submitMs: number[] = [];
    await runLimited(
      burst,
      64,
      async (i) => {
        const t0 = performance.now();
        await call(
          http,
          `${url}/v1/generations`,
          'POST',
          {
            workflow: 'echo-invert',
            inputs: { width: 8, height: 8, color: color(100_000 + i) },
          },
          `burst-${i % 64}`,
        );
        submitMs.push(performance.now() - t0);
      },
      240_000,
    );

    const directP50 = percentile(direct, 50);
    const directP95 = percentile(direct, 95);
    const added50 = percentile(service, 50) - directP50;
    const added95 = percentile(service, 95) - directP95;
    const p99 = percentile(submitMs, 99);
    ctx.details.latency = {
      rounds,
      direct: distribution(direct),
      service: distribution(service),
      clientStages: Object.fromEntries(Object.entries(clientStages).map(([k, v]) => [k, distribution(v)])),
      serverStages: stages,
      burst: { jobs: burst, concurrency: 64, submitMs: distribution(submitMs) },
    };
    ctx.log(
      `  direct p50 ${round(directP50)} ms, service p50 ${round(percentile(service, 50))} ms → added ${round(added50)} ms` +
        ` (p95 ${round(added95)} ms); submit p99 under burst ${round(p99)} ms`,
    );
    ctx.log(`  per stage (p50 ms): ${JSON.stringify(stages.p50)}`);
    const base = (v: number) => ({ baseline: v, baselineName: 'the same job straight to the simulator' });
    return [
      result(8, 'added latency p50', added50, 'ms', { ...base(directP50), target: '≤ 4 ms', pass: added50 <= 4 }),
      result(8, 'added latency p95', added95, 'ms', { ...base(directP95), target: '≤ 10 ms', pass: added95 <= 10 }),
      result(8, 'submit p99 under burst', p99, 'ms', {
        note: `${burst} submits, 64 in flight, ROLE=all; p50 ${round(percentile(submitMs, 50))} ms`,
        target: '≤ 250 ms',
        pass: p99 <= 250,
      }),
    ];
  } finally {
    await client.close();
    await http.close();
    await app.stop();
    await sims.child.stop();
  }
}

async function call(
  http: Agent,
  url: string,
  method: 'GET' | 'POST',
  json?: unknown,
  userId = 'bench',
): Promise<unknown> {
  const res = await request(url, {
    method,
    dispatcher: http,
    headers: json ? { 'content-type': 'application/json', 'x-user-id': userId } : {},
    body: json ? JSON.stringify(json) : undefined,
  });
  const body = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${url} answered ${res.statusCode}: ${body.slice(0, 200)}`);
  return JSON.parse(body) as unknown;
}

async function fetchBytes(http: Agent, url: string): Promise<number> {
  const res = await request(url, { dispatcher: http });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`GET ${url} answered ${res.statusCode}`);
  return bytes.length;
}

/**
 * Where the time goes, per job (ms, from the client's clock and the stream entry ids — Redis' clock on the same
 * machine): POST → request appended, → accepted (a worker placed it on ComfyUI), → started, → completed (result
 * stored), → state readable by the client's poll, → result fetched.
 */
async function serverStages(
  ctx: BenchContext,
  prefix: string,
  jobs: readonly { id: string; postAt: number; acceptedAt: number; seenAt: number; fetchedAt: number }[],
): Promise<{ p50: Record<string, number>; p95: Record<string, number> }> {
  const redis = ctx.redis();
  const keys = new StreamKeys(prefix);
  const requested = new Map<string, number>();
  for (const [id, fields] of await redis.xrange(keys.requests, '-', '+')) {
    requested.set((JSON.parse(fields[1]!) as { jobId: string }).jobId, idMs(id));
  }
  const at = new Map<string, Record<string, number>>();
  for (const e of await readEvents(redis, prefix)) at.set(e.jobId, { ...at.get(e.jobId), [e.type]: idMs(e.id) });
  const stages: Record<string, number[]> = {
    'POST → request appended': [],
    'request → accepted (on ComfyUI)': [],
    'accepted → started': [],
    'started → completed (result stored)': [],
    'completed → succeeded seen by the poll': [],
    'seen → result fetched': [],
  };
  for (const job of jobs) {
    const q = requested.get(job.id);
    const t = at.get(job.id) ?? {};
    const { 'job.accepted': a, 'job.started': s, 'job.completed': c } = t;
    if (q === undefined || a === undefined || s === undefined || c === undefined) continue;
    stages['POST → request appended']!.push(q - job.postAt);
    stages['request → accepted (on ComfyUI)']!.push(a - q);
    stages['accepted → started']!.push(s - a);
    stages['started → completed (result stored)']!.push(c - s);
    stages['completed → succeeded seen by the poll']!.push(job.seenAt - c);
    stages['seen → result fetched']!.push(job.fetchedAt - job.seenAt);
  }
  const pick = (p: number) => Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(percentile(v, p))]));
  return { p50: pick(50), p95: pick(95) };
}
