import type Redis from 'ioredis';
import { errorMessage } from '../streams/stream-errors';
import { isCluster, primaryOf, type RedisClient } from './redis-client';

/** Fewer replicas than REDIS_MIN_REPLICAS_ACK confirmed a write in time, or the connection changed under it. */
export class ReplicasUnconfirmedError extends Error {
  constructor(
    readonly wanted: number,
    readonly confirmed: number,
    readonly reason: 'timeout' | 'reconnected',
  ) {
    super(
      reason === 'timeout'
        ? `${confirmed} of ${wanted} Redis replica(s) confirmed the write in time`
        : 'the Redis connection was re-established between the write and its confirmation',
    );
    this.name = 'ReplicasUnconfirmedError';
  }
}

export interface AcknowledgedWriteOptions<T> {
  /** Whether this outcome needs the replicas' word (false for a refusal that wrote nothing). Default: always. */
  needsAck?: (result: T) => boolean;
  /**
   * Keep waiting, one WAIT after another, while the connection stays the same, until this aborts (a worker that
   * must not go on without the replicas' word). Default: one WAIT, then ReplicasUnconfirmedError.
   */
  patience?: AbortSignal;
  /**
   * A key the write touches (every key it touches shares its slot). On a Redis Cluster WAIT goes to the primary
   * holding that slot, on the connection the write went over; required there.
   */
  key?: string;
}

/**
 * Writes whose loss in a failover would lose a job (REDIS_MIN_REPLICAS_ACK > 0): each runs on a connection of its
 * own and is followed there by `WAIT replicas timeout`. WAIT confirms the replication offset of the *connection's*
 * last write, so it must follow the write on the same connection; a connection of its own also keeps WAIT (which
 * blocks its connection) from stalling the process's auto-pipelined command connection. Concurrent writes share the
 * WAITs (a WAIT confirms every write before it), so the cost is about one replica round trip per burst.
 *
 * A reconnect between the write and WAIT's reply voids the confirmation: WAIT on a fresh connection, which has
 * written nothing, answers at once, and the write may have gone to a primary that has since died.
 * With REDIS_MIN_REPLICAS_ACK=0 the write runs on the shared command connection and nothing else is sent.
 *
 * On a Redis Cluster the acknowledged connection is a cluster client of its own, one connection per primary: the
 * write is sent on the connection to the primary holding its keys' slot (`primaryOf` the write's key, from the
 * client's slot map) and WAIT follows it there, counting that primary's replicas. A redirect (the slot moved or is
 * moving) fails the write before anything is written, and a reconnect of any primary's connection voids the
 * confirmations in flight, as above: ReplicasUnconfirmedError, which the API answers 503 + Retry-After.
 */
export class ReplicaAck {
  private session = 0;

  private constructor(
    private readonly main: RedisClient,
    private readonly acked: RedisClient | null,
    readonly replicas: number,
    readonly timeoutMs: number,
  ) {
    if (acked && isCluster(acked)) {
      // Each primary's connection reconnects on its own; the cluster client announces each one it opens.
      const watch = (node: Redis) => node.on('close', () => this.session++);
      for (const node of acked.nodes('master')) watch(node);
      acked.on('+node', watch);
    } else {
      acked?.on('close', () => this.session++);
    }
  }

  static off(main: RedisClient): ReplicaAck {
    return new ReplicaAck(main, null, 0, 0);
  }

  /** `acked`: a connection for acknowledged writes only (closed by close()). */
  static on(main: RedisClient, acked: RedisClient, replicas: number, timeoutMs: number): ReplicaAck {
    return new ReplicaAck(main, acked, replicas, timeoutMs);
  }

  get enabled(): boolean {
    return this.acked !== null;
  }

  /** Runs `write` (on the connection WAIT will follow on) and resolves once `replicas` replicas hold what it wrote. */
  async write<T>(write: (redis: RedisClient) => Promise<T>, options: AcknowledgedWriteOptions<T> = {}): Promise<T> {
    const acked = this.acked;
    if (!acked) return write(this.main);
    const session = this.session;
    const waitOn = this.writeConnection(acked, options.key);
    const result = await write(waitOn).catch((err: unknown) => {
      // A slot that moved (MOVED) or is moving (ASK): the write ran nowhere. Learn the new map; the caller retries.
      if (isCluster(acked) && /^(MOVED|ASK) /.test(errorMessage(err))) {
        acked.refreshSlotsCache();
        throw new ReplicasUnconfirmedError(this.replicas, 0, 'reconnected');
      }
      throw err;
    });
    if (options.needsAck && !options.needsAck(result)) return result;
    for (;;) {
      const confirmed = Number(await waitOn.call('WAIT', String(this.replicas), String(this.timeoutMs)));
      if (this.session !== session) throw new ReplicasUnconfirmedError(this.replicas, 0, 'reconnected');
      if (confirmed >= this.replicas) return result;
      if (!options.patience || options.patience.aborted) {
        throw new ReplicasUnconfirmedError(this.replicas, confirmed, 'timeout');
      }
    }
  }

  /**
   * Where the write and its WAIT go: the one connection, or on a cluster the connection to the primary that holds
   * the key's slot now. The write is sent there itself, not routed by the cluster client, so a redirect cannot
   * take it to another node than the one WAIT then asks (a redirect comes back as an error instead).
   */
  private writeConnection(acked: RedisClient, key: string | undefined): RedisClient {
    if (!isCluster(acked)) return acked;
    if (key === undefined) throw new Error('an acknowledged write on a Redis Cluster must name a key it wrote');
    const primary = primaryOf(acked, key);
    // No connected primary for the slot in the client's map (a failover, a resharding): nothing is written.
    if (!primary) {
      acked.refreshSlotsCache();
      throw new ReplicasUnconfirmedError(this.replicas, 0, 'reconnected');
    }
    return primary;
  }

  async close(): Promise<void> {
    if (!this.acked) return;
    await this.acked.quit().catch(() => this.acked?.disconnect());
  }
}
