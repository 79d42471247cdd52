/**
 * The whole pipeline (api in this process, one gpu process, one projector process, simulators with 0 ms steps) on a
 * given Redis topology — one primary, or a Redis Cluster with STREAM_SHARDS — with each primary's INFO counters read
 * around the timed window: how the commands and Redis CPU spread over the primaries (measure 13).
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import Redis, { Cluster } from 'ioredis';
import { startApp } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { GenerationService } from '../../src/modules/generation/commands/generation.service';
import { StreamKeys } from '../../src/streams/stream-keys';
import type { Child } from './children';
import type { BenchContext } from './context';
import { runLimited, waitFor } from './deadline';
import { echoInputs } from './jobs';
import { counterDelta, readCounters, type CounterDelta } from './redis-tools';

export interface ShardedRunOptions {
  jobs: number;
  /** host:port of every primary (one: a plain Redis). */
  primaries: readonly { host: string; port: number }[];
  /** true: REDIS_CLUSTER_NODES, else REDIS_URL of the one primary. */
  cluster: boolean;
  shards: number;
  instances: number;
}

export interface ShardedRunOutcome {
  jobs: number;
  seconds: number;
  jobsPerSec: number;
  /** Per primary (host:port): what the timed window cost it. */
  perPrimary: Record<string, CounterDelta>;
}

export async function runShardedPipeline(ctx: BenchContext, o: ShardedRunOptions): Promise<ShardedRunOutcome> {
  const first = o.primaries[0]!;
  // With shards the prefix has no tag (each shard adds its own); one shard on a cluster needs one.
  const prefix =
    o.shards > 1 ? `bench-shards-${randomUUID().slice(0, 6)}:` : `bench:{one-${randomUUID().slice(0, 6)}}:`;
  const redisEnv: Record<string, string> = o.cluster
    ? { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: o.primaries.map((p) => `${p.host}:${p.port}`).join(',') }
    : { REDIS_URL: `redis://${first.host}:${first.port}` };
  const common = {
    ...redisEnv,
    STREAM_PREFIX: prefix,
    STREAM_SHARDS: String(o.shards),
    USER_MAX_ACTIVE: '1000',
    CLAIM_IDLE_MS: '30000',
  };
  const observer = o.cluster
    ? new Cluster([...o.primaries], { redisOptions: { maxRetriesPerRequest: 3 } })
    : new Redis(first.port, first.host, { maxRetriesPerRequest: 3 });
  const nodes = o.primaries.map((p) => new Redis(p.port, p.host, { maxRetriesPerRequest: 3 }));
  const keys = StreamKeys.sharded(prefix, o.shards);
  const started: Child[] = [];
  let api: Awaited<ReturnType<typeof startApp>> | undefined;
  try {
    const sims = await ctx.startSimulators('simulators-sharded', o.instances, 0);
    started.push(sims.child);
    started.push(await ctx.startApp('projector-sharded', { ...common, ROLE: 'projector' }));
    started.push(await ctx.startApp('gpu-sharded', { ...common, ROLE: 'gpu', COMFYUI_URLS: sims.urls.join(',') }));
    api = await startApp(
      loadConfig({ ...common, ROLE: 'api', PORT: '0', LOG_LEVEL: 'silent', INSTANCE_NAME: 'bench-api-sharded' }),
      { host: '127.0.0.1' },
    );
    const generation = api.app.get(GenerationService);
    let offset = 0;
    const submit = async (i: number): Promise<void> => {
      await generation.submit({
        workflow: 'echo-invert',
        inputs: echoInputs(offset + i),
        userId: `bench-user-${i % 100}`,
        source: 'api',
      });
    };
    // Completed runs over every shard (each shard's stats:run counts its own).
    const completed = async (): Promise<number> => {
      const counts = await Promise.all(keys.shards.map((k) => observer.hget(k.runStats, 'completed')));
      return counts.reduce((n, c) => n + Number(c ?? 0), 0);
    };
    const warmup = 20;
    await runLimited(warmup, 8, submit, 30_000);
    offset += warmup;
    await waitFor('sharded pipeline warm-up', completed, (n) => n >= warmup, { timeoutMs: 60_000, intervalMs: 20 });
    const before = await Promise.all(nodes.map(readCounters));
    const t0 = performance.now();
    const submitting = runLimited(o.jobs, 32, submit, 300_000);
    const { at } = await waitFor(`sharded pipeline: ${o.jobs} jobs`, completed, (n) => n >= warmup + o.jobs, {
      timeoutMs: 300_000,
      intervalMs: 20,
    });
    await submitting;
    const after = await Promise.all(nodes.map(readCounters));
    const seconds = (at - t0) / 1000;
    return {
      jobs: o.jobs,
      seconds,
      jobsPerSec: o.jobs / seconds,
      perPrimary: Object.fromEntries(
        o.primaries.map((p, i) => [`${p.host}:${p.port}`, counterDelta(before[i]!, after[i]!)]),
      ),
    };
  } finally {
    await api?.close().catch(() => undefined);
    await Promise.all(started.map((c) => c.stop()));
    observer.disconnect();
    for (const n of nodes) n.disconnect();
  }
}
