import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { RedisClient } from '../../../src/redis/redis-client';
import { ComfyUiSimulator } from '../../../src/tools/comfyui-sim/comfyui-simulator';
import { freePort } from '../../support/free-port';
import { pollUntil } from '../../support/poll-until';
import { StreamKeys } from '../../../src/streams/stream-keys';
import { cleanupPrefix, keysMatching, uniquePrefix } from '../../support/test-redis';

export interface RedisTopology {
  /** The service's Redis variables (REDIS_URL, or REDIS_CLUSTER_NODES …). */
  env(): Record<string, string>;
  /** The test's own client of that Redis. */
  client(): RedisClient;
  /** A key prefix for one test (default: a tagged one; STREAM_SHARDS > 1 needs one without a tag). */
  prefix?: () => string;
}

/**
 * The "done when": kill -9 the whole service mid-job, start it again, the job completes — once (ComfyUI ran
 * its prompt once, one job.completed). On a single Redis (restart-mid-job.spec.ts) and on a Redis Cluster.
 */
export function describeRestartMidJob(topology: RedisTopology): void {
  describe('the service killed mid-job and started again', () => {
    let sim: ComfyUiSimulator;
    let redis: RedisClient;
    let prefix: string;
    const children: ChildProcess[] = [];

    beforeEach(async () => {
      sim = new ComfyUiSimulator({ stepMs: 0, manualSteps: true });
      await sim.start({ port: 0, host: '127.0.0.1' });
      redis = topology.client();
      prefix = topology.prefix?.() ?? uniquePrefix('restart');
    });

    afterEach(async () => {
      for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
      await sim.stop();
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    });

    function startService(port: number): ChildProcess {
      const child = spawn(
        process.execPath,
        ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../../src/main.ts')],
        {
          env: {
            ...process.env,
            ...topology.env(),
            STREAM_PREFIX: prefix,
            PORT: String(port),
            COMFYUI_URLS: sim.url,
            CLAIM_IDLE_MS: '1000',
            INSTANCE_NAME: 'box',
            LOG_LEVEL: 'silent',
          },
          stdio: 'ignore',
        },
      );
      children.push(child);
      return child;
    }

    const http = async (port: number, path: string, init?: RequestInit) => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
        return { status: res.status, body: (await res.json()) as any };
      } catch {
        return { status: 0, body: undefined };
      }
    };

    it('completes the job after the restart and ComfyUI ran its prompt once', async () => {
      const port = await freePort();
      const first = startService(port);
      await pollUntil(
        () => http(port, '/health/ready'),
        (r) => r.status === 200,
        { timeoutMs: 60_000 },
      );
      const created = await http(port, '/v1/generations', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: 'txt2img', inputs: { prompt: 'survive', width: 64, height: 64, steps: 3 } }),
      });
      expect(created.status).toBe(202);
      const running = await pollUntil(
        async () => (await http(port, `/v1/generations/${created.body.id}`)).body,
        (v) => v?.status === 'running' && typeof v.startedAt === 'string',
        { timeoutMs: 30_000 },
      );
      sim.releaseSteps(1);
      const exited = new Promise((r) => first.once('exit', r));
      first.kill('SIGKILL');
      await exited;

      startService(port);
      await pollUntil(
        () => http(port, '/health/ready'),
        (r) => r.status === 200,
        { timeoutMs: 60_000 },
      );
      // The restarted service re-attaches to the prompt still running on ComfyUI; let it finish.
      const done = await pollUntil(
        async () => {
          sim.releaseSteps(1);
          return (await http(port, `/v1/generations/${created.body.id}`)).body;
        },
        (v) => v?.status === 'succeeded',
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      // It started before the restart, not when the restarted service re-attached to it.
      expect(done.startedAt).toBe(running.startedAt);
      const result = await fetch(`http://127.0.0.1:${port}/v1/generations/${created.body.id}/result`);
      expect(result.status).toBe(200);
      expect(sim.stats().submitted).toBe(1);
      expect(sim.stats().executions).toBe(1);
      // The job's shard's event stream (with STREAM_SHARDS: `<prefix>{i}:jobs:events`, the job id names i).
      const events = new StreamKeys(prefix).forJob(created.body.id).events;
      const shardEvents = (await keysMatching(redis, `${prefix}*jobs:events`)).filter((k) => k !== events);
      const completed = (await Promise.all([events, ...shardEvents].map((k) => redis.xrange(k, '-', '+'))))
        .flat()
        .map(([, f]) => JSON.parse(f[1]!))
        .filter((e) => e.jobId === created.body.id && e.type === 'job.completed');
      expect(completed).toHaveLength(1);
    });
  });
}
