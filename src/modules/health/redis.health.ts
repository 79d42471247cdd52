import { withTimeout } from '../../common/with-timeout.util';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { isCluster, primaries, type RedisClient } from '../../redis/redis-client';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { connectedEndpoint, REDIS } from '../../streams/redis.provider';
import { errorMessage } from '../../streams/stream-errors';

const PING_TIMEOUT_MS = 1_000;

/**
 * Redis answers, and which server that is: `primary` (host:port this process talks to now; after a Sentinel failover,
 * the new primary), its role and its online replicas. Down when the connection landed on a replica, or when fewer
 * replicas are online than REDIS_MIN_REPLICAS_ACK needs (no submit could be confirmed: they all get 503).
 *
 * On a Redis Cluster every primary is asked (a shard whose primary is gone stops its users' jobs, not everyone's, but
 * it is still down): `primaries` lists each with its role and replicas, and `clusterState` is CLUSTER INFO's state.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'redis'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const started = Date.now();
    if (isCluster(this.redis)) return this.checkCluster(session, started);
    try {
      const [, replication] = await withTimeout(
        Promise.all([this.redis.ping(), this.redis.info('replication')]),
        PING_TIMEOUT_MS,
      );
      const { role, replicas } = parseReplication(replication);
      const required = this.config.replicaAck.replicas;
      const details = {
        latencyMs: Date.now() - started,
        primary: connectedEndpoint(this.redis),
        via: this.config.redisSentinel ? `sentinel:${this.config.redisSentinel.masterName}` : 'url',
        role,
        replicas,
        ...(required > 0 ? { replicasRequired: required } : {}),
      };
      if (role !== 'master') return session.down({ ...details, message: `connected to a ${role}, not a primary` });
      if (replicas < required) {
        return session.down({
          ...details,
          message: `${replicas} replica(s) online, REDIS_MIN_REPLICAS_ACK needs ${required}: submits are refused`,
        });
      }
      return session.up(details);
    } catch (err) {
      return session.down({ message: errorMessage(err), connection: this.redis.status });
    }
  }

  private async checkCluster(
    session: ReturnType<HealthIndicatorService['check']>,
    started: number,
  ): Promise<HealthIndicatorResult> {
    try {
      const nodes = primaries(this.redis);
      const [state, ...replications] = await withTimeout(
        Promise.all([
          this.redis.call('CLUSTER', 'INFO').then(String),
          ...nodes.map((node) => node.info('replication')),
        ]),
        PING_TIMEOUT_MS,
      );
      const clusterState = /^cluster_state:(\w+)/m.exec(state)?.[1] ?? 'unknown';
      const listed = nodes.map((node, i) => ({
        endpoint: `${node.options.host}:${node.options.port}`,
        ...parseReplication(replications[i]),
      }));
      const details = { latencyMs: Date.now() - started, via: 'cluster', clusterState, primaries: listed };
      const wrong = listed.filter((p) => p.role !== 'master');
      if (nodes.length === 0) return session.down({ ...details, message: 'no primary known yet' });
      if (clusterState !== 'ok') return session.down({ ...details, message: `cluster state is ${clusterState}` });
      if (wrong.length > 0) {
        return session.down({ ...details, message: `${wrong.map((p) => p.endpoint).join(', ')} not a primary` });
      }
      return session.up(details);
    } catch (err) {
      return session.down({ message: errorMessage(err), via: 'cluster', connection: this.redis.status });
    }
  }
}

/** INFO replication: the server's role and how many of its replicas are online. */
function parseReplication(info: string): { role: string; replicas: number } {
  const role = /^role:(\w+)/m.exec(info)?.[1] ?? 'unknown';
  const replicas = info.split('\n').filter((line) => /^slave\d+:.*state=online/.test(line)).length;
  return { role, replicas };
}
