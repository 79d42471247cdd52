import { ConfigError, loadConfig } from '../../src/config/config.loader';
import { clusterOptions } from '../../src/streams/redis.provider';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected ConfigError');
};

describe('configuration: Redis Cluster', () => {
  it('is off by default', () => {
    expect(loadConfig({}).redisCluster).toBeNull();
  });

  it('parses the nodes (an IPv6 one without its brackets)', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: ' redis-1:6379, 10.0.0.8:7001,[::1]:7002 ',
      STREAM_PREFIX: '{cr}:',
    });
    expect(config.redisCluster).toEqual({
      nodes: [
        { host: 'redis-1', port: 6379 },
        { host: '10.0.0.8', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
  });

  it('with Sentinel too, start-up stops naming the variables', () => {
    const problems = problemsOf({
      REDIS_CLUSTER_NODES: 'redis-1:6379',
      STREAM_PREFIX: '{cr}:',
      REDIS_SENTINELS: 'sentinel-1:26379',
      REDIS_SENTINEL_MASTER: 'comfy-relay',
    });
    expect(problems).toEqual([
      {
        variable: 'REDIS_CLUSTER_NODES',
        rule: expect.stringContaining('set either REDIS_CLUSTER_NODES or REDIS_SENTINELS + REDIS_SENTINEL_MASTER'),
      },
    ]);
  });

  it('needs a hash tag in STREAM_PREFIX (every script keeps its keys in one slot)', () => {
    expect(problemsOf({ REDIS_CLUSTER_NODES: 'redis-1:6379' })).toEqual([
      { variable: 'STREAM_PREFIX', rule: expect.stringContaining('needs a hash tag with REDIS_CLUSTER_NODES') },
    ]);
    expect(problemsOf({ REDIS_CLUSTER_NODES: 'redis-1:6379', STREAM_PREFIX: 'cr:' })[0]?.variable).toBe(
      'STREAM_PREFIX',
    );
  });

  it('refuses a database other than 0; takes acknowledged writes (WAIT goes to the primary of the written slot)', () => {
    const base = { REDIS_CLUSTER_NODES: 'redis-1:6379', STREAM_PREFIX: '{cr}:' };
    expect(problemsOf({ ...base, REDIS_URL: 'redis://127.0.0.1:6379/2' }).map((p) => p.variable)).toEqual([
      'REDIS_URL',
    ]);
    expect(loadConfig({ ...base, REDIS_MIN_REPLICAS_ACK: '1' }).replicaAck.replicas).toBe(1);
  });

  it('takes credentials and TLS from REDIS_URL for every node, reads from primaries only', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://relay:p%40ss-0123456789@not-used.example:6390',
      REDIS_CLUSTER_NODES: 'redis-1:6379',
      STREAM_PREFIX: '{cr}:',
    });
    const options = clusterOptions(config, { connectionName: 'x', enableAutoPipelining: true });
    expect(options).toMatchObject({
      scaleReads: 'master',
      enableAutoPipelining: true,
      redisOptions: { connectionName: 'x', username: 'relay', password: 'p@ss-0123456789', tls: {} },
    });
  });
});
