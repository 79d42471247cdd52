import { TestRedisCluster } from '../support/redis-cluster';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { shardTag, StreamKeys } from '../../src/streams/stream-keys';
import { cli } from '../cli/cli-harness';
import { uniquePrefix, uniqueShardedPrefix } from '../support/test-redis';
import { describeRestartMidJob } from '../e2e/support/restart-mid-job.suite';
import { describeTaggedPipeline } from './support/tagged-pipeline.suite';

/**
 * The service on a 3-primary Redis Cluster (REDIS_CLUSTER_NODES, an ioredis Cluster client): every connection the app
 * makes — commands, blocking readers, hand-off subscribers, the blob backend, the CLI — goes through it: the e2e path
 * with Telegram delivery, cancels, the CLI with replay and projection rebuild, and a kill -9 of the service mid-job.
 */
describe('a 3-primary Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  const cluster = new TestRedisCluster(3);
  // Nothing listens on port 1: with a cluster, REDIS_URL's host must not be used for anything.
  const redisEnv = () => ({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: cluster.nodeList });

  beforeAll(async () => {
    await cluster.start();
  }, 60_000);

  afterAll(async () => {
    await cluster.stop();
  });

  describeTaggedPipeline(redisEnv, uniquePrefix('c3'), {
    // Every primary is asked, by its own address.
    redisHealth: (details) =>
      expect(details).toMatchObject({
        via: 'cluster',
        clusterState: 'ok',
        primaries: expect.arrayContaining(
          cluster.ports.map((port) => expect.objectContaining({ endpoint: `127.0.0.1:${port}`, role: 'master' })),
        ),
      }),
  });
  describeRestartMidJob({ env: redisEnv, client: () => cluster.client() });

  describe('with STREAM_SHARDS=6 (each shard under its own tag, spread over the primaries)', () => {
    const sharded = () => ({ ...redisEnv(), STREAM_SHARDS: '6' });
    describeTaggedPipeline(sharded, uniqueShardedPrefix('c6'), {
      sandboxPrefix: () => uniqueShardedPrefix('sandbox'),
    });
    describeRestartMidJob({ env: sharded, client: () => cluster.client(), prefix: () => uniqueShardedPrefix('r6') });
  });

  describe('STREAM_SHARDS=6', () => {
    const prefix = uniqueShardedPrefix('shards');
    let app: TestApp;

    beforeAll(async () => {
      app = await startTestApp(
        {
          ...redisEnv(),
          STREAM_SHARDS: '6',
          ROLE: 'api,gpu,projector',
          COMFYUI_SIM_INSTANCES: '2',
          COMFYUI_SIM_STEP_MS: '5',
        },
        prefix,
      );
    });

    afterAll(async () => {
      await app?.stop();
    });

    /** A small job per user (in order) through the API, each answered 202, then each polled until it succeeded. */
    const runToSuccess = async (users: readonly string[]) => {
      const ids: string[] = [];
      for (const user of users) {
        const res = await app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
          headers: { 'x-user-id': user },
        });
        expect(res.status).toBe(202);
        ids.push(res.body.id as string);
      }
      for (const id of ids) {
        await pollUntil(
          async () => (await app.http(`/v1/generations/${id}`)).body.status as string,
          (status) => status === 'succeeded',
          { timeoutMs: 60_000, description: `${id} succeeded` },
        );
      }
    };

    it("30 users' jobs all succeed, and every primary holds keys of them", async () => {
      // The shard tags spread over the slot space: redis-cli's even slot ranges give each primary two shards.
      const owners = await Promise.all(
        StreamKeys.sharded(prefix, 6).shards.map(async (k) => {
          const node = cluster.node(cluster.ports[0]!);
          try {
            const slot = Number(await node.call('CLUSTER', 'KEYSLOT', k.events));
            const ranges = (await node.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
            return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
          } finally {
            node.disconnect();
          }
        }),
      );
      expect(cluster.ports.map((port) => owners.filter((p) => p === port).length)).toEqual([2, 2, 2]);
      await runToSuccess(Array.from({ length: 30 }, (_, user) => `user-${user}`));
      for (const port of cluster.ports) {
        const node = cluster.node(port);
        try {
          const [, keys] = await node.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 10_000);
          expect({ port, holdsKeys: keys.length > 0 }).toEqual({ port, holdsKeys: true });
        } finally {
          node.disconnect();
        }
      }
    });

    it('beside a second gpu process both arbitrate the shards (their scripts in one slot each), and every job succeeds', async () => {
      const gpuStats = (a: TestApp) => a.streams.stats().find((row) => row.group === 'gpu');
      const peer = await startTestApp(
        { ...redisEnv(), STREAM_SHARDS: '6', ROLE: 'gpu', COMFYUI_SIM_INSTANCES: '2', COMFYUI_SIM_STEP_MS: '5' },
        prefix,
      );
      try {
        await pollUntil(
          () => [gpuStats(app), gpuStats(peer)],
          (stats) => stats.every((s) => s?.arbitrated === true),
          { timeoutMs: 20_000, intervalMs: 50, description: 'both gpu processes arbitrate' },
        );
        const before = [gpuStats(app)!.processed, gpuStats(peer)!.processed];
        await runToSuccess(Array.from({ length: 24 }, (_, i) => `peer-user-${i % 8}`));
        expect(gpuStats(app)!.processed).toBeGreaterThan(before[0]!);
        expect(gpuStats(peer)!.processed).toBeGreaterThan(before[1]!);
        expect([gpuStats(app)!.readErrors, gpuStats(peer)!.readErrors]).toEqual([0, 0]);
      } finally {
        await peer.stop();
      }
    });

    it("a shard's dead letters are listed by `cli dlq` and `cli stats`, named with their shard", async () => {
      const keys = StreamKeys.sharded(prefix, 6).forShard(3);
      await app.redis.xadd(keys.events, '*', 'garbage', 'x'); // unreadable: each group dead-letters it
      const env = { ...redisEnv(), STREAM_SHARDS: '6' };
      const letters = await pollUntil(
        async () => JSON.parse((await cli(prefix, ['dlq', 'list', '--json'], { env })).out) as { id: string }[],
        (list) => list.length > 0,
        { timeoutMs: 20_000, description: 'a dead letter listed' },
      );
      expect(letters.every((l) => l.id.startsWith('3/'))).toBe(true);
      const stats = await cli(prefix, ['stats', '--json'], { env });
      const streams = (JSON.parse(stats.out) as { streams: { name: string }[] }).streams.map((st) => st.name);
      const tag = (shard: number) => `{${shardTag(shard, 6)}}`;
      expect(streams).toEqual(
        expect.arrayContaining([`${tag(0)}:jobs:events`, `${tag(5)}:jobs:requests`, `${tag(3)}:jobs:dlq`]),
      );
    });

    it('a blocking reader per primary is impossible: Redis refuses one XREAD(GROUP) over two slots of one primary', async () => {
      // Find two shards on the same primary; one read over both is refused (CROSSSLOT) even there, so each shard
      // gets a reader of its own (docs/job-state.md#shards).
      const layout = StreamKeys.sharded(prefix, 6);
      for (const port of cluster.ports) {
        const node = cluster.node(port);
        try {
          const ranges = (await node.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
          const own = ranges.filter(([, , [, p]]) => p === port);
          const mine: string[] = [];
          for (const k of layout.shards) {
            const slot = Number(await node.call('CLUSTER', 'KEYSLOT', k.events));
            if (own.some(([from, to]) => slot >= from && slot <= to)) mine.push(k.events);
          }
          if (mine.length < 2) continue;
          await expect(node.call('XREAD', 'COUNT', '1', 'STREAMS', mine[0]!, mine[1]!, '0', '0')).rejects.toThrow(
            /CROSSSLOT/,
          );
          return;
        } finally {
          node.disconnect();
        }
      }
      throw new Error('no primary holds two of the six shards');
    });
  });
});
