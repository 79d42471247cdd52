import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { TestS3Server } from '../../test/support/s3-server';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { waitFor } from '../lib/deadline';
import { PrivateRedis, connect } from '../lib/redis-tools';
import { round } from '../lib/stats';

type Backend = 'redis' | 'fs' | 's3';
const SIZE = 1024;
const WARM_UP = 3;

/**
 * 7. Redis memory per finished job, for each blob backend: the whole app (ROLE=all, simulator) on a private
 * redis-server takes N txt2img jobs at 1024×1024 through the HTTP API; `used_memory` after every result is stored
 * and projected, minus before, ÷ N. API results are kept (BLOB_TTL_SECONDS), so the Redis backend holds every PNG.
 * The progress stream is left out of the per-job figure: it is capped (PROGRESS_MAXLEN entries, ~190 bytes each),
 * a fixed amount at any volume — reported on its own — whereas 40 jobs would never reach the cap and count it whole.
 */
export async function measureBlobMemory(ctx: BenchContext): Promise<MeasureResult[]> {
  const jobs = ctx.quick ? 12 : 40;
  const perJob: Record<Backend, number> = { redis: Number.NaN, fs: Number.NaN, s3: Number.NaN };
  const pngBytes: number[] = [];
  for (const backend of ['redis', 'fs', 's3'] as const) {
    perJob[backend] = await measureBackend(ctx, backend, jobs, pngBytes);
    ctx.log(`  ${backend}: ${round(perJob[backend])} bytes of Redis memory per finished job`);
  }
  ctx.details.blobMemory = {
    jobs,
    size: `${SIZE}x${SIZE}`,
    bytesPerJob: perJob,
    resultPngBytes: pngBytes,
    bytesPerJobByKeyClass: breakdowns,
    progressStreamBytesPerEntry: progressEntryBytes,
  };
  ctx.log(`  by key class (bytes per job, s3): ${JSON.stringify(breakdowns.s3)}`);
  const againstRedis = { baseline: perJob.redis, baselineName: 'Redis blob backend' };
  return [
    result(7, 'Redis memory per finished job: Redis blob backend', perJob.redis, 'bytes', {
      note: `${SIZE}×${SIZE} txt2img results kept for API clients (BLOB_TTL_SECONDS); the capped progress stream (~${round(
        progressEntryBytes.s3 ?? Number.NaN,
      )} B × PROGRESS_MAXLEN, fixed) not counted per job`,
    }),
    result(7, 'Redis memory per finished job: filesystem blob backend', perJob.fs, 'bytes', againstRedis),
    result(7, 'Redis memory per finished job: S3 blob backend', perJob.s3, 'bytes', {
      ...againstRedis,
      target: '≤ 5 KB',
      pass: perJob.s3 <= 5 * 1024,
    }),
  ];
}

const breakdowns: Partial<Record<Backend, Record<string, number>>> = {};
/** Bytes per entry of the capped progress stream: × PROGRESS_MAXLEN is its fixed size. */
const progressEntryBytes: Partial<Record<Backend, number>> = {};

async function measureBackend(ctx: BenchContext, backend: Backend, jobs: number, pngBytes: number[]): Promise<number> {
  const redisServer = await PrivateRedis.start();
  if (!redisServer) throw new Error('redis-server is needed for this measure (a private one, for used_memory)');
  const dir = backend === 'fs' ? mkdtempSync(join(tmpdir(), 'comfy-relay-bench-blobs-')) : undefined;
  const s3 = backend === 's3' ? await new TestS3Server('bench-blobs').start() : undefined;
  const redis = connect(redisServer.url);
  try {
    const app = await startApp(
      loadConfig({
        REDIS_URL: redisServer.url,
        STREAM_PREFIX: `bench:blobs:${ctx.runId}:`,
        PORT: '0',
        LOG_LEVEL: 'silent',
        COMFYUI_SIM_STEP_MS: '0',
        USER_MAX_ACTIVE: '1000',
        ...(dir ? { BLOB_DIR: dir } : {}),
        ...(s3 ? s3.env() : {}),
        BLOB_REDIS_MAX_BYTES: '0',
      }),
      { host: '127.0.0.1' },
    );
    try {
      const run = async (count: number, label: string) => {
        const ids: string[] = [];
        for (let i = 0; i < count; i++) ids.push(await submit(app.url, `${label} ${i}`));
        for (const id of ids) pngBytes.push(await waitForResult(app.url, id));
      };
      const progressKey = `${app.config.streamPrefix}jobs:progress`;
      const perJobMemory = async () => (await usedMemory(redis)) - (await keyMemory(redis, progressKey));
      await run(WARM_UP, 'warm-up');
      const before = await perJobMemory();
      await run(jobs, 'measured');
      const after = await perJobMemory();
      breakdowns[backend] = await memoryByKeyClass(redis, jobs);
      progressEntryBytes[backend] = (await keyMemory(redis, progressKey)) / Math.max(1, await redis.xlen(progressKey));
      return (after - before) / jobs;
    } finally {
      await app.close();
    }
  } finally {
    redis.disconnect();
    redisServer.stop();
    await s3?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function submit(url: string, prompt: string): Promise<string> {
  const response = await fetch(`${url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workflow: 'txt2img', inputs: { prompt, width: SIZE, height: SIZE } }),
  });
  if (response.status !== 202) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

/** Waits until the job succeeded (its result stored and projected); returns the PNG's size. */
async function waitForResult(url: string, id: string): Promise<number> {
  const { value } = await waitFor(
    `job ${id} succeeded`,
    async () => {
      const view = (await (await fetch(`${url}/v1/generations/${id}`)).json()) as {
        status: string;
        result?: { size: number }[];
      };
      if (view.status === 'failed' || view.status === 'cancelled') throw new Error(`job ${id} ${view.status}`);
      return view;
    },
    (view) => view.status === 'succeeded',
    { timeoutMs: 60_000, intervalMs: 10 },
  );
  return value.result?.[0]?.size ?? 0;
}

async function usedMemory(redis: ReturnType<typeof connect>): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? Number.NaN);
}

/** MEMORY USAGE of every key, summed per key class (ids and hashes replaced by *), ÷ jobs: where the bytes go. */
async function memoryByKeyClass(redis: ReturnType<typeof connect>, jobs: number): Promise<Record<string, number>> {
  const classes: Record<string, number> = {};
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    for (const key of keys) {
      const name = key
        .replace(/^bench:blobs:[^:]+:/, '')
        .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '*')
        .replace(/[0-9a-f]{64}/g, '*');
      classes[name] = (classes[name] ?? 0) + Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
    }
    cursor = next;
    if (cursor === '0') break;
  }
  const total = jobs + WARM_UP;
  return Object.fromEntries(
    Object.entries(classes)
      .map(([k, v]) => [k, round(v / total)] as const)
      .sort((a, b) => b[1] - a[1]),
  );
}

/** MEMORY USAGE of one key, counted exactly (SAMPLES 0); 0 when it does not exist. */
async function keyMemory(redis: ReturnType<typeof connect>, key: string): Promise<number> {
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}
