import Redis from 'ioredis';
import type { AppConfig } from '../config/app-config';

export const REDIS = Symbol('REDIS');

/**
 * The command connection shared by a process. Blocking readers duplicate it. Commands issued while Redis is
 * down wait in the offline queue for a bounded number of reconnect attempts, then fail (callers retry or leave
 * entries pending); the connection itself keeps reconnecting forever with a capped backoff.
 */
export function createRedis(config: Pick<AppConfig, 'redisUrl'>, name: string): Redis {
  return new Redis(config.redisUrl, {
    connectionName: name,
    maxRetriesPerRequest: 20,
    // TCP keepalive: a peer that vanished without a FIN is noticed by the OS instead of never.
    keepAlive: 10_000,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 7), 2_000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    // Commands issued in the same tick by concurrent jobs leave in one write and cost Redis one socket read
    // (a job's transitions come from many independent async paths; this is where round trips are saved).
    // Blocking readers turn it off: they hold their own connection and send one command at a time.
    enableAutoPipelining: true,
  });
}
