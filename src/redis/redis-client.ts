import Redis, { Cluster, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';

/**
 * What every store, reader and script call takes: one Redis (REDIS_URL, or the primary Sentinel names) or a Redis
 * Cluster (REDIS_CLUSTER_NODES). Both speak the same commands; what differs — duplicating a connection, reaching
 * every primary (INFO, SCRIPT LOAD), CLIENT ids — goes through the helpers below, so no caller branches on it.
 */
export type RedisClient = Redis | Cluster;

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** The options a caller may change on a connection of its own (a blocking reader, a subscriber, the CLI's tail). */
export interface ConnectionOverrides {
  connectionName: string;
  /** null: a command waits through any number of reconnects (blocking readers). */
  maxRetriesPerRequest?: number | null;
  enableAutoPipelining?: boolean;
}

/**
 * A connection of one's own to the same Redis. On a cluster that is a second Cluster client with the same nodes: it
 * holds one connection per primary, so a blocking XREADGROUP on it occupies only the connection to the primary that
 * holds the stream's slot (ioredis routes it by its first key), and nothing else is ever sent on it.
 */
export function duplicateConnection(redis: RedisClient, overrides: ConnectionOverrides): RedisClient {
  if (!isCluster(redis)) return redis.duplicate(overrides);
  const { connectionName, maxRetriesPerRequest, enableAutoPipelining } = overrides;
  return redis.duplicate(undefined, {
    ...(enableAutoPipelining === undefined ? {} : { enableAutoPipelining }),
    redisOptions: {
      ...redis.options.redisOptions,
      connectionName,
      ...(maxRetriesPerRequest === undefined ? {} : { maxRetriesPerRequest }),
    },
  });
}

/**
 * Every primary the client talks to: the one Redis, or each primary of the cluster as ioredis knows it now (its slot
 * map, refreshed on MOVED and on a timer). For per-server commands: INFO, SCRIPT LOAD, PING, DBSIZE.
 */
export function primaries(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/**
 * The connection to the primary that holds `key`'s slot, as the cluster client routes it now (its slot map): a
 * command sent there follows, on the same connection, what the client sent for that key (WAIT after a write).
 * undefined while the slot map does not name a connected primary.
 */
export function primaryOf(cluster: Cluster, key: string): Redis | undefined {
  const owner = cluster.slots[calculateSlot(key)]?.[0];
  if (owner === undefined) return undefined;
  return cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === owner);
}

/** The name a connection was given (logs); a cluster keeps it in the options of its node connections. */
export function connectionNameOf(redis: RedisClient): string | undefined {
  const options: Pick<RedisOptions, 'connectionName'> | undefined = isCluster(redis)
    ? redis.options.redisOptions
    : redis.options;
  return options?.connectionName;
}
