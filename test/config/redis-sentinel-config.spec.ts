import { ConfigError, loadConfig } from '../../src/config/config.loader';
import { sentinelOptions } from '../../src/streams/redis.provider';

describe('configuration: Sentinel and acknowledged writes', () => {
  it('is off by default: REDIS_URL alone, no WAIT', () => {
    const config = loadConfig({});
    expect(config.redisSentinel).toBeNull();
    expect(config.replicaAck).toEqual({ replicas: 0, timeoutMs: 500 });
    expect(sentinelOptions(config)).toEqual({});
  });

  it('parses the sentinels (an IPv6 one without its brackets) and the acknowledgement settings', () => {
    const config = loadConfig({
      REDIS_SENTINELS: ' sentinel-1:26379, 10.0.0.7:26380,[::1]:26381 ',
      REDIS_SENTINEL_MASTER: 'comfy-relay',
      REDIS_MIN_REPLICAS_ACK: '2',
      REDIS_REPLICA_ACK_TIMEOUT_MS: '250',
    });
    expect(config.redisSentinel).toEqual({
      sentinels: [
        { host: 'sentinel-1', port: 26379 },
        { host: '10.0.0.7', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      masterName: 'comfy-relay',
    });
    expect(config.replicaAck).toEqual({ replicas: 2, timeoutMs: 250 });
  });

  it.each([
    [{ REDIS_SENTINELS: 'sentinel-1:26379' }, 'REDIS_SENTINEL_MASTER'],
    [{ REDIS_SENTINEL_MASTER: 'comfy-relay' }, 'REDIS_SENTINELS'],
  ])('%j alone stops start-up naming %s', (env, missing) => {
    try {
      loadConfig(env);
      throw new Error('expected ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        { variable: missing, rule: 'REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together' },
      ]);
    }
  });

  it('takes credentials, TLS and database from REDIS_URL for the data nodes and the sentinels, not its host', () => {
    const options = sentinelOptions(
      loadConfig({
        REDIS_URL: 'rediss://relay:p%40ss-0123456789@not-used.example:6390/3',
        REDIS_SENTINELS: 'sentinel-1:26379,sentinel-2:26379',
        REDIS_SENTINEL_MASTER: 'comfy-relay',
      }),
    );
    expect(options).toMatchObject({
      sentinels: [
        { host: 'sentinel-1', port: 26379 },
        { host: 'sentinel-2', port: 26379 },
      ],
      name: 'comfy-relay',
      role: 'master',
      username: 'relay',
      password: 'p@ss-0123456789',
      sentinelUsername: 'relay',
      sentinelPassword: 'p@ss-0123456789',
      db: 3,
      tls: {},
      sentinelTLS: {},
      enableTLSForSentinelMode: true,
    });
    expect(options).not.toHaveProperty('host');
    expect(options).not.toHaveProperty('port');
  });

  it('sends no credentials and no TLS when REDIS_URL has none', () => {
    const options = sentinelOptions(
      loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_MASTER: 'comfy-relay' }),
    );
    for (const key of ['username', 'password', 'sentinelPassword', 'tls', 'sentinelTLS', 'db']) {
      expect(options).not.toHaveProperty(key);
    }
  });
});
