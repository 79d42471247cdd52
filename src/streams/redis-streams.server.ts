import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import type { RedisClient } from '../redis/redis-client';
import { lastValueFrom } from 'rxjs';
import type { Logger } from '../common/logger';
import { runJobHandler } from '../common/observability/observability.hooks';
import type { AppConfig } from '../config/app-config';
import type { ConsumerDirectory } from './consumer-directory';
import { ConsumerNameLease } from './consumer-name.lease';
import { consumerGroupSpecs, type ConsumerGroupName, type ConsumerGroupSpec } from './consumer-groups';
import type { AnyJobEnvelope } from './job-event.types';
import type { StreamHandlerExtras } from './on-stream-event.decorator';
import { ConcurrencyBudget } from './concurrency-budget';
import { StreamConsumer, type ConsumerStats, type HandlerContext } from './stream-consumer';
import { StreamContext } from './stream.context';
import { errorMessage } from './stream-errors';
import type { StreamKeys } from './stream-keys';
import { StreamRetention } from './stream-retention';

export enum StreamsStatus {
  CONNECTED = 'connected',
  DISCONNECTED = 'disconnected',
}

const RETENTION_INTERVAL_MS = 60_000;

/**
 * Nest transport over Redis Streams consumer groups. Handlers are ordinary `@EventPattern` methods (via
 * `@OnStreamEvent(type, group)`); one StreamConsumer runs per group that has handlers in this process.
 */
export class RedisStreamsServer
  extends Server<Record<string, never>, StreamsStatus>
  implements CustomTransportStrategy
{
  private readonly routes = new Map<ConsumerGroupName, Map<string, MessageHandler>>();
  private readonly consumers: StreamConsumer[] = [];
  private readonly leases: ConsumerNameLease[] = [];
  private retentionTimer?: NodeJS.Timeout;
  private closePromise?: Promise<void>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
    private readonly config: AppConfig,
    private readonly log: Logger,
    private readonly specOverrides: Partial<Record<ConsumerGroupName, Partial<ConsumerGroupSpec>>> = {},
    private readonly directory?: ConsumerDirectory,
  ) {
    super();
  }

  /** Routes by (group, type); a second handler for the same pair is a start-up error, not a silent chain. */
  override addHandler(
    pattern: unknown,
    callback: MessageHandler,
    isEventHandler = false,
    extras: Record<string, unknown> = {},
  ): void {
    const group = (extras as Partial<StreamHandlerExtras>).group;
    const type = typeof pattern === 'string' ? pattern : JSON.stringify(pattern);
    if (!isEventHandler || !group) {
      throw new Error(`stream handler for ${type} must be declared with @OnStreamEvent(type, group)`);
    }
    const byType = this.routes.get(group) ?? new Map<string, MessageHandler>();
    if (byType.has(type)) throw new Error(`two stream handlers for ${type} in group ${group}`);
    byType.set(type, callback);
    this.routes.set(group, byType);
    super.addHandler(`${group}:${type}`, callback, isEventHandler, extras);
  }

  listen(callback: (err?: unknown) => void): void {
    this.start().then(
      () => callback(),
      (err: unknown) => callback(err),
    );
  }

  /**
   * One consumer per (group, shard): a shard's streams sit in one slot, and Redis refuses a read across slots even
   * on one node, so each shard has its own blocking reader. The shards' consumers of a group share one name (their
   * PELs are per stream) and one in-flight budget (the group's concurrency in this process; a freed slot goes to the
   * shard holding the lowest fair-queue start tag, else to the shards in turn).
   */
  private async start(): Promise<void> {
    for (const [group, byType] of this.routes) {
      const lease = new ConsumerNameLease(this.redis, `${this.keys.prefix}consumer-lease:`, this.config.claimIdleMs);
      const consumerName = await lease.acquire(`${group}-${this.config.instanceName}`);
      this.leases.push(lease);
      const specs = this.keys.shards.map((keys) => ({
        keys,
        spec: { ...consumerGroupSpecs(keys, this.config)[group], ...this.specOverrides[group] },
      }));
      const concurrency = specs[0].spec.concurrency;
      const budget = new ConcurrencyBudget(concurrency);
      const mine: StreamConsumer[] = [];
      for (const { keys, spec } of specs) {
        const consumer = new StreamConsumer(this.redis, keys, {
          streams: spec.streams,
          group,
          consumer: consumerName,
          concurrency: spec.concurrency,
          budget,
          claimIdleMs: this.config.claimIdleMs,
          maxDeliveries: this.config.maxDeliveries,
          deadLetterEndsJob: spec.deadLetterEndsJob,
          readBatchMs: spec.readBatchMs,
          acceptsHandOffs: spec.acceptsHandOffs,
          // Not with QUEUE_DISPATCH_AHEAD=1: the one dispatched entry of a shard would wait in a busy process's
          // hands while an idle peer finds nothing to read.
          lookahead: spec.fairAcrossShards && specs.length > 1 && this.config.queueDispatchAhead >= 2,
          logger: this.log,
          handle: (envelope, ctx) => this.invoke(group, byType, envelope, ctx),
        });
        await consumer.start();
        mine.push(consumer);
      }
      this.consumers.push(...mine);
      this.directory?.register(group, {
        name: consumerName,
        held: () => concurrency - budget.free + mine.reduce((n, c) => n + c.stats().backlog, 0),
      });
      this.log.info({ group, consumer: consumerName, shards: mine.length, types: [...byType.keys()] }, 'consuming');
    }
    if (this.consumers.length > 0) {
      this.retentionTimer = setInterval(() => void this.applyRetention(), RETENTION_INTERVAL_MS);
      this.retentionTimer.unref();
    }
    this._status$.next(StreamsStatus.CONNECTED);
  }

  private async invoke(
    group: ConsumerGroupName,
    byType: Map<string, MessageHandler>,
    envelope: AnyJobEnvelope,
    ctx: HandlerContext,
  ) {
    const handler = byType.get(envelope.type);
    if (!handler) return; // this group does not care about this type: acknowledged as seen
    // With tracing on, the handler runs in a span continuing the trace the event carries (a direct call when off).
    const place = {
      group,
      consumer: ctx.consumer,
      stream: ctx.stream,
      entryId: ctx.id,
      deliveries: ctx.deliveries,
      fields: ctx.fields,
    };
    await runJobHandler(envelope, place, async (trace) => {
      const result: unknown = await handler(envelope, new StreamContext([ctx, trace]));
      await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
    });
  }

  private async applyRetention(): Promise<void> {
    const retention = new StreamRetention(this.redis);
    const streams = this.keys.shards.flatMap((k) => [k.requestsPriority, k.requests, k.events]);
    for (const stream of streams) {
      await retention.trim(stream, this.config.retentionMs).catch((err: unknown) => {
        this.log.debug({ err: errorMessage(err), stream }, 'retention trim failed');
      });
    }
  }

  /** One row per (group, consumer): a group's shard consumers share the name, so their counters are summed. */
  stats(): ConsumerStats[] {
    const rows = new Map<string, ConsumerStats>();
    for (const stats of this.consumers.map((c) => c.stats())) {
      const key = `${stats.group}\u0000${stats.consumer}`;
      const seen = rows.get(key);
      rows.set(key, seen ? sumStats(seen, stats) : stats);
    }
    return [...rows.values()];
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    // Out of the directory first: peers stop handing work to consumers that are about to stop taking it.
    for (const group of this.routes.keys()) this.directory?.unregister(group);
    await Promise.allSettled(this.consumers.map((c) => c.close(this.config.shutdownGraceMs)));
    await Promise.allSettled(this.leases.map((l) => l.release()));
    this._status$.next(StreamsStatus.DISCONNECTED);
  }

  on(): never {
    throw new Error('RedisStreamsServer has no client events; read stats() or the status stream');
  }

  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- Nest's Server signature
  unwrap<T = RedisClient>(): T {
    return this.redis as T;
  }
}

function sumStats(a: ConsumerStats, b: ConsumerStats): ConsumerStats {
  return {
    group: a.group,
    consumer: a.consumer,
    inFlight: a.inFlight + b.inFlight,
    backlog: a.backlog + b.backlog,
    processed: a.processed + b.processed,
    failed: a.failed + b.failed,
    deadLettered: a.deadLettered + b.deadLettered,
    claimed: a.claimed + b.claimed,
    readErrors: a.readErrors + b.readErrors,
    handedOff: a.handedOff + b.handedOff,
    lastReadAt: Math.max(a.lastReadAt, b.lastReadAt),
    readsAhead: a.readsAhead || b.readsAhead,
    arbitrated: a.arbitrated || b.arbitrated,
  };
}
