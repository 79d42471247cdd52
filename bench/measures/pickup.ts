import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { encodeEnvelope, entryFields } from '../../src/streams/envelope.codec';
import { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';
import { bullConnection } from '../lib/bull-connection';
import { result, type BenchContext, type MeasureResult } from '../lib/context';
import { sleep, waitFor } from '../lib/deadline';
import { echoInputs, requestEnvelope } from '../lib/jobs';
import { distribution, type Distribution } from '../lib/stats';

interface Sampler {
  /**
   * Enqueues job i: calls `register(jobId)` and starts its clock just before sending the enqueue command;
   * resolves once Redis answered.
   */
  enqueue(i: number, register: (jobId: string) => void): Promise<void>;
  close(): Promise<void>;
}

const WARMUP = 20;

/**
 * 2. Idle pickup latency: enqueue → handler start, one job at a time with random spacing so the worker is idle
 * (blocked, or sleeping for the poller) when each job arrives. Producer and workers share this process and its
 * clock (performance.now()), each on its own connection. Our consumer and BullMQ's worker run side by side and
 * take turns (job i goes to one, job i+1 to the other), so both see the same machine at the same moments; the
 * predecessor's poller is sampled on its own, with wider spacing than its 100 ms sleep.
 */
export async function measurePickup(ctx: BenchContext): Promise<MeasureResult[]> {
  const n = ctx.quick ? 150 : 500;
  const nPoll = ctx.quick ? 100 : 500;
  const [ours, bull] = await sample(ctx, ['streams', 'bullmq'], n, [5, 15]);
  ctx.log(`  streams (XREADGROUP BLOCK): p50 ${ours.p50.toFixed(2)} ms, p99 ${ours.p99.toFixed(2)} ms`);
  ctx.log(`  BullMQ worker: p50 ${bull.p50.toFixed(2)} ms, p99 ${bull.p99.toFixed(2)} ms`);
  const [poll] = await sample(ctx, ['list-poll'], nPoll, [110, 160]);
  ctx.log(`  LIST + RPOP + 100 ms sleep: p50 ${poll.p50.toFixed(1)} ms, p99 ${poll.p99.toFixed(1)} ms`);
  ctx.details.pickup = { streams: ours, bullmq: bull, listPoll: poll };
  const vsBull = (key: keyof Distribution) => ({ baseline: bull[key], baselineName: 'BullMQ worker' });
  const vsPoll = (key: keyof Distribution) => ({ baseline: poll[key], baselineName: 'LIST + RPOP/100 ms sleep' });
  return [
    result(2, `pickup p50 (n=${ours.n})`, ours.p50, 'ms', vsBull('p50')),
    result(2, 'pickup p95', ours.p95, 'ms', vsBull('p95')),
    result(2, 'pickup p99', ours.p99, 'ms', { ...vsBull('p99'), target: '≤ 3 ms', pass: ours.p99 <= 3 }),
    result(2, 'pickup max', ours.max, 'ms', vsBull('max')),
    result(2, 'pickup p50 vs predecessor', ours.p50, 'ms', vsPoll('p50')),
    result(2, 'pickup p99 vs predecessor', ours.p99, 'ms', vsPoll('p99')),
  ];
}

type Kind = 'streams' | 'bullmq' | 'list-poll';

/** `n` recorded jobs per kind (after a warm-up), the kinds taking turns; one distribution per kind. */
async function sample(
  ctx: BenchContext,
  kinds: readonly Kind[],
  n: number,
  [minGap, maxGap]: [number, number],
): Promise<Distribution[]> {
  const sentAt = new Map<string, number>();
  const latencies = new Map<string, number[]>();
  const seen = (jobId: string): void => {
    const t = performance.now();
    const t0 = sentAt.get(jobId);
    sentAt.delete(jobId);
    const list = latencies.get(jobId);
    latencies.delete(jobId);
    if (t0 !== undefined && list) list.push(t - t0);
  };
  const samplers: Sampler[] = [];
  const recorded = kinds.map(() => [] as number[]);
  try {
    for (const kind of kinds) {
      const prefix = ctx.prefix(`pickup-${kind}`);
      samplers.push(
        kind === 'streams'
          ? await streamsSampler(ctx.redisUrl, prefix, sentAt, seen)
          : kind === 'bullmq'
            ? await bullmqSampler(ctx.redisUrl, prefix, sentAt, seen)
            : listPollSampler(ctx.redisUrl, prefix, sentAt, seen),
      );
    }
    for (let i = 0; i < (WARMUP + n) * kinds.length; i++) {
      const k = i % kinds.length;
      await samplers[k].enqueue(i, (id) => {
        if (i >= WARMUP * kinds.length) latencies.set(id, recorded[k]);
      });
      await sleep(minGap + Math.random() * (maxGap - minGap));
    }
    await waitFor(
      `${kinds.join('+')}: last job picked up`,
      () => sentAt.size,
      (size) => size === 0,
      {
        timeoutMs: 5_000,
        intervalMs: 10,
      },
    );
  } finally {
    for (const s of samplers) await s.close();
  }
  return recorded.map((list) => distribution(list));
}

async function streamsSampler(
  url: string,
  prefix: string,
  sentAt: Map<string, number>,
  seen: (jobId: string) => void,
): Promise<Sampler> {
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  const producer = new Redis(url, { maxRetriesPerRequest: 3 });
  const keys = new StreamKeys(prefix);
  const consumer = new StreamConsumer(redis, keys, {
    streams: [keys.requests],
    group: 'gpu',
    consumer: 'pickup',
    concurrency: 8,
    claimIdleMs: 30_000,
    maxDeliveries: 5,
    deadLetterEndsJob: true,
    handle: async (envelope) => seen(envelope.jobId),
  });
  await consumer.start();
  return {
    enqueue: async (i, register) => {
      const envelope = requestEnvelope(i, 'echo-invert', echoInputs(i));
      const fields = entryFields(envelope);
      register(envelope.jobId);
      sentAt.set(envelope.jobId, performance.now());
      await producer.xadd(keys.requests, '*', ...fields);
    },
    close: async () => {
      await consumer.close(1_000);
      redis.disconnect();
      producer.disconnect();
    },
  };
}

async function bullmqSampler(
  url: string,
  prefix: string,
  sentAt: Map<string, number>,
  seen: (jobId: string) => void,
): Promise<Sampler> {
  const queue = new Queue('pickup', { connection: bullConnection(url), prefix: prefix.slice(0, -1) });
  const worker = new Worker('pickup', async (job) => seen((job.data as { jobId: string }).jobId), {
    connection: bullConnection(url),
    prefix: prefix.slice(0, -1),
  });
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  return {
    enqueue: async (i, register) => {
      const envelope = requestEnvelope(i, 'echo-invert', echoInputs(i));
      register(envelope.jobId);
      sentAt.set(envelope.jobId, performance.now());
      await queue.add(envelope.type, envelope);
    },
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}

/** The predecessor's worker: RPOP a LIST, sleep 100 ms when it is empty. */
function listPollSampler(
  url: string,
  prefix: string,
  sentAt: Map<string, number>,
  seen: (jobId: string) => void,
): Sampler {
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  const producer = new Redis(url, { maxRetriesPerRequest: 3 });
  const key = `${prefix}queue`;
  let stop = false;
  const loop = (async () => {
    for (let guard = 0; !stop && guard < 10_000_000; guard++) {
      const raw = await redis.rpop(key);
      if (raw === null) {
        await sleep(100);
        continue;
      }
      seen((JSON.parse(raw) as { jobId: string }).jobId);
    }
  })();
  return {
    enqueue: async (i, register) => {
      const envelope = requestEnvelope(i, 'echo-invert', echoInputs(i));
      const body = encodeEnvelope(envelope);
      register(envelope.jobId);
      sentAt.set(envelope.jobId, performance.now());
      await producer.lpush(key, body);
    },
    close: async () => {
      stop = true;
      await loop;
      redis.disconnect();
      producer.disconnect();
    },
  };
}
