import { withTimeout } from '../../common/with-timeout.util';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { connectedEndpoint, REDIS } from '../../streams/redis.provider';
import { errorMessage } from '../../streams/stream-errors';

const PING_TIMEOUT_MS = 1_000;

/**
 * Redis answers, and which server that is: `primary` (host:port this process talks to now; after a Sentinel failover,
 * the new primary), its role and its online replicas. Down when the connection landed on a replica, or when fewer
 * replicas are online than REDIS_MIN_REPLICAS_ACK needs (no submit could be confirmed: they all get 503).
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'redis'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const started = Date.now();
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
}

/** INFO replication: the server's role and how many of its replicas are online. */
function parseReplication(info: string): { role: string; replicas: number } {
  const role = /^role:(\w+)/m.exec(info)?.[1] ?? 'unknown';
  const replicas = info.split('\n').filter((line) => /^slave\d+:.*state=online/.test(line)).length;
  return { role, replicas };
}
