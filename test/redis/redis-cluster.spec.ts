import { TestRedisCluster } from '../support/redis-cluster';
import { uniquePrefix } from '../support/test-redis';
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
});
