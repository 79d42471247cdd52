import { TestRedisCluster } from '../support/redis-cluster';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
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

    it("30 users' jobs all succeed, and every primary holds keys of them", async () => {
      const ids: string[] = [];
      for (let user = 0; user < 30; user++) {
        const res = await app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
          headers: { 'x-user-id': `user-${user}` },
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
  });
});
