import type { RedisClient } from './redis-client';

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
 */
export class ReplicaAck {
  private session = 0;

  private constructor(
    private readonly main: RedisClient,
    private readonly acked: RedisClient | null,
    readonly replicas: number,
    readonly timeoutMs: number,
  ) {
    acked?.on('close', () => this.session++);
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
    const result = await write(acked);
    if (options.needsAck && !options.needsAck(result)) return result;
    for (;;) {
      const confirmed = Number(await acked.call('WAIT', String(this.replicas), String(this.timeoutMs)));
      if (this.session !== session) throw new ReplicasUnconfirmedError(this.replicas, 0, 'reconnected');
      if (confirmed >= this.replicas) return result;
      if (!options.patience || options.patience.aborted) {
        throw new ReplicasUnconfirmedError(this.replicas, confirmed, 'timeout');
      }
    }
  }

  async close(): Promise<void> {
    if (!this.acked) return;
    await this.acked.quit().catch(() => this.acked?.disconnect());
  }
}
