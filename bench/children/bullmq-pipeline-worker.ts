/**
 * The BullMQ pipeline's worker (issue 11's baseline), in its own process: a BullMQ Worker on queue QUEUE (prefix
 * BULL_PREFIX) that runs each job on the ComfyUI instances of COMFYUI_URLS through the project's own ComfyUiClient
 * (used as a library: one client per instance, created as InstancePool creates them), calls `job.updateProgress` on
 * every `progress` message, fetches the output over /view and stores it in the project's blob store (createBlobStore
 * with the process's configuration: on Redis by default, under STREAM_PREFIX, held `out:<jobId>` for
 * BLOB_TTL_SECONDS), exactly as the gpu runner stores a result. Returns the blob refs (the QueueEvents listener
 * receives them with `completed`).
 *
 * Placement is local: concurrency = CONCURRENCY (default 2 × instances), each job on the least busy instance, so at
 * most `depth` prompts per instance as the gpu process's pipeline depth 2. Prints `READY` once BullMQ and the
 * sockets are connected, answers `stats` with `STATS <json>`, and on `exit` closes and exits 0.
 * env: REDIS_URL, STREAM_PREFIX, BULL_PREFIX, QUEUE, COMFYUI_URLS, CONCURRENCY
 */
import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { Worker, type Job } from 'bullmq';
import { blobHolders } from '../../src/blobs/blob-store';
import { createBlobStore } from '../../src/blobs/blob-store.factory';
import { silentLogger } from '../../src/common/logger';
import { loadConfig } from '../../src/config/config.loader';
import { ComfyUiClient } from '../../src/modules/gpu/comfyui/comfyui.client';
import { promptIdFor } from '../../src/modules/gpu/runner/comfyui.executor';
import { resultNodesToTemp } from '../../src/modules/gpu/runner/temp-results';
import { preloadScripts } from '../../src/redis/lua-script';
import type { BlobRef } from '../../src/streams/job-event.types';
import { createRedis } from '../../src/streams/redis.provider';
import { StreamKeys } from '../../src/streams/stream-keys';
import { bindWorkflow, deterministicSeedSource, WorkflowCatalog } from '../../src/workflows';
import { bullConnection } from '../lib/bull-connection';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

export interface BullPipelineJobData {
  workflow: string;
  /** Validated by the producer (no image inputs in this bench: nothing to upload). */
  inputs: Record<string, unknown>;
  userId: string;
}

export interface BullPipelineResult {
  outputs: BlobRef[];
  instance: string;
  promptId: string;
}

const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const SOCKET_WAIT_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const urls = env('COMFYUI_URLS').split(',').filter(Boolean);
  const concurrency = Number(env('CONCURRENCY', String(2 * urls.length)));
  const catalog = await WorkflowCatalog.loadDir(config.workflowsDir);
  const redis = createRedis(config, `bench-bullmq-worker-${process.pid}`);
  await preloadScripts(redis);
  const blobs = await createBlobStore(config.blobs, redis, new StreamKeys(env('STREAM_PREFIX')), {
    warn: () => undefined,
  });
  const instances = urls.map((url, i) => ({
    url,
    busy: 0,
    client: new ComfyUiClient({ baseUrl: url, clientId: `bench-bullmq-${process.pid}-${i}`, logger: silentLogger }),
  }));
  for (const instance of instances) instance.client.connect();
  const socketsBy = Date.now() + SOCKET_WAIT_MS;
  while (instances.some((i) => !i.client.socketConnected)) {
    if (Date.now() > socketsBy) throw new Error(`ComfyUI sockets not open within ${SOCKET_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const stats = { processed: 0, failed: 0, progressUpdates: 0, stored: 0, lastError: '' };
  let rotation = 0;

  const process_ = async (job: Job<BullPipelineJobData, BullPipelineResult>): Promise<BullPipelineResult> => {
    const template = catalog.get(job.data.workflow);
    if (!template) throw new Error(`unknown workflow ${job.data.workflow}`);
    // Least busy instance, ties in turn: with concurrency 2 × instances no instance gets a third prompt.
    rotation = (rotation + 1) % instances.length;
    let instance = instances[rotation];
    for (let k = 1; k < instances.length; k++) {
      const candidate = instances[(rotation + k) % instances.length];
      if (candidate.busy < instance.busy) instance = candidate;
    }
    instance.busy++;
    try {
      const jobId = String(job.id);
      const promptId = promptIdFor(jobId, job.attemptsMade + 1);
      const bound = bindWorkflow(template, job.data.inputs, {
        uploadedImages: {},
        seedSource: deterministicSeedSource(jobId),
      });
      const prompt = resultNodesToTemp(bound.prompt, bound.outputNodeIds);
      await instance.client.submit(prompt, { promptId });
      const progress: Promise<unknown>[] = [];
      const result = await instance.client.watch(promptId, {
        onEvent: (event) => {
          if (event.type !== 'progress') return;
          stats.progressUpdates++;
          progress.push(job.updateProgress({ value: event.value, max: event.max, node: event.node }));
        },
      });
      const wanted = template.output?.node;
      const refs = wanted ? (result.outputs[wanted]?.images ?? []) : result.images;
      if (refs.length === 0) throw new Error('ComfyUI finished without producing an image');
      const outputs: BlobRef[] = [];
      const hold = { holder: blobHolders.result(jobId), ttlSeconds: config.blobs.ttlSeconds };
      for (const ref of refs) {
        const bytes = await instance.client.view(ref, { maxBytes: MAX_OUTPUT_BYTES });
        if (bytes.subarray(bytes.length - 8, bytes.length - 4).toString('ascii') !== 'IEND') {
          throw new Error(`broken PNG for ${ref.filename} (${bytes.length} bytes)`);
        }
        outputs.push(await blobs.store.put(bytes, 'image/png', hold));
        stats.stored++;
      }
      await Promise.all(progress);
      stats.processed++;
      return { outputs, instance: instance.url, promptId };
    } catch (err) {
      stats.failed++;
      stats.lastError = err instanceof Error ? err.message : String(err);
      throw err;
    } finally {
      instance.busy--;
    }
  };

  const worker = new Worker<BullPipelineJobData, BullPipelineResult>(env('QUEUE'), process_, {
    connection: bullConnection(config.redisUrl),
    prefix: env('BULL_PREFIX'),
    concurrency,
  });
  worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  process.stdout.write('READY\n');

  let closing = false;
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'stats') process.stdout.write(`STATS ${JSON.stringify(stats)}\n`);
    if (line === 'exit' && !closing) {
      closing = true;
      setTimeout(() => process.exit(0), 5_000).unref();
      void worker
        .close()
        .then(() => Promise.allSettled(instances.map((i) => i.client.close())))
        .then(() => {
          blobs.close();
          redis.disconnect();
        })
        .finally(() => process.exit(0));
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bullmq-pipeline-worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
