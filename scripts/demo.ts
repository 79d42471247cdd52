/**
 * `npm run demo`: the whole pipeline in one process on the embedded default (local Redis, all roles, the
 * built-in ComfyUI stand-in), driven over the real HTTP API. Prints each job's timeline and where its images
 * were written, then exits 0 (1 if any job did not end as expected).
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/config.loader';
import { JobTimelineReader } from '../src/modules/generation/projection/job-timeline.reader';
import { REDIS } from '../src/streams/redis.provider';
import { StreamKeys } from '../src/streams/stream-keys';

const OUTPUT_DIR = resolve('demo-output');
const DEADLINE_MS = 120_000;

interface DemoJob {
  label: string;
  body: { workflow: string; inputs: Record<string, unknown> };
  headers?: Record<string, string>;
  expect: 'succeeded' | 'cancelled' | 'rejected';
  cancel?: boolean;
}

const JOBS: DemoJob[] = [
  {
    label: 'txt2img',
    body: { workflow: 'txt2img', inputs: { prompt: 'a lighthouse at dusk', width: 256, height: 192 } },
    expect: 'succeeded',
  },
  {
    label: 'echo-invert',
    body: { workflow: 'echo-invert', inputs: { width: 128, height: 128, color: 16711680 } },
    expect: 'succeeded',
  },
  {
    label: 'idempotent retry (same Idempotency-Key → same job)',
    body: { workflow: 'echo-invert', inputs: { width: 128, height: 128, color: 16711680 } },
    headers: { 'idempotency-key': 'demo-retry-1' },
    expect: 'succeeded',
  },
  {
    label: 'cancelled right after submit',
    body: { workflow: 'txt2img', inputs: { prompt: 'never mind' } },
    expect: 'cancelled',
    cancel: true,
  },
  { label: 'invalid request (400)', body: { workflow: 'txt2img', inputs: { width: 'wide' } }, expect: 'rejected' },
];

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const config = loadConfig({
    ...process.env,
    STREAM_PREFIX: process.env.STREAM_PREFIX ?? `demo-${Date.now()}:`,
    PORT: process.env.PORT ?? '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty',
    USER_MAX_ACTIVE: process.env.USER_MAX_ACTIVE ?? '10',
    COMFYUI_SIM_STEP_MS: process.env.COMFYUI_SIM_STEP_MS ?? '40',
  });
  print(`comfy-relay demo — Redis ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')}, prefix ${config.streamPrefix}`);
  const app = await startApp(config, { host: '127.0.0.1' });
  let failures = 0;
  try {
    print(`HTTP API on ${app.url}\n`);
    const submitted: { job: DemoJob; id?: string }[] = [];
    const progressLines: Promise<string>[] = [];
    for (const job of JOBS) {
      const res = await fetch(`${app.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'demo', ...job.headers },
        body: JSON.stringify(job.body),
      });
      const body = (await res.json()) as { id?: string; position?: number; etaSeconds?: number; message?: string };
      print(
        `POST ${job.label}: ${res.status} ${res.status === 202 ? `id=${body.id} position=${body.position} eta=${body.etaSeconds}s` : body.message}`,
      );
      if (job.expect === 'rejected') {
        if (res.status !== 400) failures++;
        continue;
      }
      if (job.label === 'txt2img' && body.id) progressLines.push(followProgress(app.url, body.id, job.label));
      if (job.cancel && body.id) {
        const cancel = await fetch(`${app.url}/v1/generations/${body.id}/cancel`, { method: 'POST' });
        print(`  cancel → ${cancel.status} ${JSON.stringify(await cancel.json())}`);
      }
      submitted.push({ job, id: body.id });
    }
    const retry = await fetch(`${app.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'demo', 'idempotency-key': 'demo-retry-1' },
      body: JSON.stringify(JOBS[2]!.body),
    });
    const retryBody = (await retry.json()) as { id: string };
    print(
      `POST same Idempotency-Key again: ${retry.status} id=${retryBody.id} (replayed=${retry.headers.get('idempotent-replayed')})\n`,
    );

    for (const line of await Promise.all(progressLines)) print(line);
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const timelines = new JobTimelineReader(app.app.get(REDIS), app.app.get(StreamKeys));
    for (const { job, id } of submitted) {
      if (!id) continue;
      const final = await waitForEnd(app.url, id);
      print(`── ${job.label} — ${id}: ${final.status}${final.error ? ` (${final.error.message})` : ''}`);
      if (final.status !== job.expect) failures++;
      for (const step of await timelines.read(id)) {
        print(
          `   +${String(step.sinceStartMs).padStart(5)} ms  ${step.type.padEnd(21)} ${step.actor.padEnd(22)} ${step.summary}`,
        );
      }
      for (const result of final.result ?? []) {
        const bytes = Buffer.from(await (await fetch(`${app.url}${result.url}`)).arrayBuffer());
        const file = join(OUTPUT_DIR, `${id}-${result.index}.png`);
        writeFileSync(file, bytes);
        print(`   image: ${file} (${bytes.length} bytes, sha256 ${result.sha256.slice(0, 12)}…)`);
      }
      print();
    }
    const health = (await (await fetch(`${app.url}/health`)).json()) as { status: string };
    print(`GET /health → ${health.status}`);
  } finally {
    await app.close();
  }
  if (failures > 0) {
    print(`demo: ${failures} job(s) did not end as expected`);
    process.exit(1);
  }
  print('demo: all jobs ended as expected');
  process.exit(0);
}

/** Follows a job's Server-Sent Events and summarises its live progress ticks in one line. */
async function followProgress(base: string, id: string, label: string): Promise<string> {
  const ticks: string[] = [];
  const response = await fetch(`${base}/v1/generations/${id}/events`, { signal: AbortSignal.timeout(DEADLINE_MS) });
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += Buffer.from(chunk).toString('utf8');
    for (let split = buffer.indexOf('\n\n'); split >= 0; split = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (!data) continue;
      const event = JSON.parse(data) as { type: string; payload: { value?: number; max?: number } };
      if (event.type === 'job.progress' && event.payload.max) {
        ticks.push(`${Math.round(((event.payload.value ?? 0) / event.payload.max) * 100)}%`);
      } else ticks.push(event.type.replace('job.', ''));
    }
  }
  return `live events of ${label} (SSE): ${ticks.join(' → ')}\n`;
}

async function waitForEnd(base: string, id: string): Promise<any> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const view = (await (await fetch(`${base}/v1/generations/${id}`)).json()) as { status: string };
    if (['succeeded', 'failed', 'cancelled'].includes(view.status)) return view;
    if (Date.now() > deadline) return view;
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
