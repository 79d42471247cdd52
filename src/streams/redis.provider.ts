import type { Socket } from 'node:net';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { AppConfig } from '../config/app-config';
import { isCluster, type RedisClient } from '../redis/redis-client';

export const REDIS = Symbol('REDIS');

type RedisTopology = Pick<AppConfig, 'redisUrl' | 'redisSentinel' | 'redisCluster'>;

/**
 * The command connection shared by a process; every other connection is its duplicate() (blocking readers, the CLI's
 * tail) or comes from here too (acknowledged writes), so one place decides where Redis is. Commands issued while
 * Redis is down wait in the offline queue for a bounded number of reconnect attempts, then fail (callers retry or
 * leave entries pending); the connection itself keeps reconnecting forever with a capped backoff.
 *
 * With Sentinel (REDIS_SENTINELS) the primary is asked of the sentinels at every (re)connect, and a connection that
 * lands on a replica (the ready check reads its role) or meets READONLY reconnects: after a failover every connection
 * follows the new primary, and commands that were in flight are sent again there.
 *
 * With a Redis Cluster (REDIS_CLUSTER_NODES) it is an ioredis Cluster: each command goes to the primary holding its
 * key's slot (scaleReads 'master': a replica's stream reads could lag behind a consumer group's own writes), MOVED
 * and ASK are followed, and auto-pipelining batches per node.
 */
export function createRedis(config: RedisTopology, name: string): RedisClient {
  const options: RedisOptions = {
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
  };
  if (config.redisCluster) return new Cluster([...config.redisCluster.nodes], clusterOptions(config, options));
  if (!config.redisSentinel) return new Redis(config.redisUrl, options);
  return new Redis({ ...options, ...sentinelOptions(config) });
}

/**
 * The sentinel part of the options: REDIS_URL gives the credentials, TLS and database (for the data nodes and the
 * sentinels alike); its host is not used.
 */
export function sentinelOptions(config: RedisTopology): RedisOptions {
  const sentinel = config.redisSentinel;
  if (!sentinel) return {};
  const url = new URL(config.redisUrl);
  const username = decodeURIComponent(url.username) || undefined;
  const password = decodeURIComponent(url.password) || undefined;
  const db = Number(url.pathname.replace(/^\//, '') || 0);
  return {
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.masterName,
    role: 'master',
    ...(username ? { username, sentinelUsername: username } : {}),
    ...(password ? { password, sentinelPassword: password } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    // All sentinels unreachable: ask again soon (the default gives up after a few tries, then ioredis' own backoff).
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1_000),
  };
}

/**
 * Commands whose first argument is not their key (see clusterOptions). ioredis compares the name as it was called:
 * lower case for `redis.xinfo(…)`, as written for `redis.call('XREADGROUP', …)`. (It also finds the keys of a
 * `call()` only when the name is in lower case: calls here name their command in lower case.)
 */
const CLUSTER_UNBATCHED = ['eval', 'evalsha', 'xgroup', 'xinfo', 'xread', 'xreadgroup', 'memory', 'object', 'publish']
  .flatMap((name) => [name, name.toUpperCase()])
  .concat(['WAIT', 'CLUSTER', 'CLIENT', 'INFO']);

/**
 * A cluster client's options: REDIS_URL gives the credentials and TLS of every node (its host is not used). The
 * per-connection settings (name, keepalive, retries of a command) go to each node's connection; reconnecting is the
 * cluster's own (clusterRetryStrategy: it re-reads the slot map from any node it can reach).
 */
export function clusterOptions(config: RedisTopology, node: RedisOptions): ClusterOptions {
  const url = new URL(config.redisUrl);
  const username = decodeURIComponent(url.username) || undefined;
  const password = decodeURIComponent(url.password) || undefined;
  return {
    scaleReads: 'master',
    enableAutoPipelining: node.enableAutoPipelining ?? false,
    // ioredis batches auto-pipelined commands by the slot of their first argument: for EVALSHA that is the script's
    // hash, for XREADGROUP 'GROUP', for XGROUP / XINFO / MEMORY / OBJECT a subcommand (ioredis finds no key in
    // these at all), so commands of several shards landed in one batch sent to one primary ("same slots allocation
    // group" / MOVED, seen with STREAM_SHARDS=6). These go on their own, routed by their key or redirected by MOVED.
    autoPipeliningIgnoredCommands: CLUSTER_UNBATCHED,
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 7), 2_000),
    // A failover moves slots for a few seconds: keep retrying commands that meet CLUSTERDOWN / TRYAGAIN meanwhile.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 32,
    redisOptions: {
      connectionName: node.connectionName,
      maxRetriesPerRequest: node.maxRetriesPerRequest,
      keepAlive: node.keepAlive,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
}

/** host:port of the Redis server a connection is talking to now (after a failover: the new primary), if connected. */
export function connectedEndpoint(redis: RedisClient): string | null {
  if (isCluster(redis)) return null; // one socket per primary: /health lists them
  const socket = (redis as unknown as { stream?: Socket }).stream;
  if (!socket?.remoteAddress || socket.remotePort === undefined) return null;
  const host = socket.remoteAddress.includes(':') ? `[${socket.remoteAddress}]` : socket.remoteAddress;
  return `${host}:${socket.remotePort}`;
}
