import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../redis/redis-client';
import { parseGroupsReply } from '../../streams/stream-reply.parser';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { capacityOf, type GpuCapacity } from '../generation';

export interface PendingHead {
  id: string;
  consumer: string;
  /** Since the entry was appended (its id's timestamp): how long the work has been outstanding. */
  ageMs: number;
  /** Since its holder last touched it (heartbeats reset this). */
  idleMs: number;
  deliveries: number;
}

export interface ConsumerRow {
  name: string;
  pending: number;
  idleMs: number;
  /** Redis 7.2+ only: since the consumer's last successful read. */
  inactiveMs?: number;
}

export interface GroupStats {
  group: string;
  consumers: number;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after deletions or trims). */
  lag: number | null;
  lastDeliveredId: string;
  oldestPending?: PendingHead;
  consumerList?: ConsumerRow[];
}

export interface StreamStats {
  /** Without the prefix, e.g. `jobs:requests`. */
  name: string;
  key: string;
  length: number;
  lastId?: string;
  groups: GroupStats[];
}

export interface GpuWorkerRow {
  worker: string;
  slots: number;
  expiresAt: number;
  live: boolean;
}

export type QueueTier = 'normal' | 'priority';

/** Queue members read from the head to find the normal tier's first (past them, its wait is not reported). */
const NORMAL_HEAD_SCAN = 64;
export const QUEUE_TIERS: readonly QueueTier[] = ['normal', 'priority'];

export interface TierQueue {
  /** Jobs of the tier waiting in the queue (accepted, not yet taken by a worker). */
  length: number;
  /** Since the oldest of them was submitted; null when none waits (or its view is gone). */
  oldestWaitMs: number | null;
}

export interface StreamsSnapshot {
  at: number;
  prefix: string;
  streams: StreamStats[];
  dlqSize: number;
  queueLength: number;
  /** The queue by tier (the priority tier's queued jobs are also kept in queue:priority, see JOB_SUBMIT). */
  queueTiers: Record<QueueTier, TierQueue>;
  draining: boolean;
  gpuWorkers: GpuWorkerRow[];
  /** Live gpu processes, distinct instances and job slots (the same count the ETA divides by). */
  capacity: GpuCapacity;
}

type PipelineResult = [Error | null, unknown][];

/** One shard's part of a snapshot. */
type ShardSnapshot = Pick<StreamsSnapshot, 'streams' | 'dlqSize' | 'queueLength' | 'queueTiers'>;

/**
 * Reads the state of every job stream and its consumer groups, the queue, the DLQ, drain and the gpu fleet in two
 * pipelined round trips: the one source of the operators' figures — what `cli stats` prints, the bot's `/stats`
 * answers, `/metrics` exports at scrape time and `/health` judges. Read-only; a missing stream is reported as empty.
 */
@Injectable()
export class StreamStatsReader {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** Every shard's streams (one shard: today's five). */
  streamKeys(): string[] {
    return this.keys.shards.flatMap((k) => [k.requestsPriority, k.requests, k.events, k.progress, k.dlq]);
  }

  /**
   * With STREAM_SHARDS > 1 every shard's streams are listed on their own, named with the shard's tag
   * (`{3}:jobs:requests`): `cli stats`, /health and /metrics show lag and pending per shard. Queue and DLQ figures
   * are summed over the shards. Each shard is read in its own pipelines (one slot each, as a cluster requires); the
   * drain flag and the gpu fleet, which belong to no shard, in one more.
   */
  async snapshot({
    consumers = false,
    now = Date.now(),
  }: { consumers?: boolean; now?: number } = {}): Promise<StreamsSnapshot> {
    const [shards, home] = await Promise.all([
      Promise.all(this.keys.shards.map((keys) => this.shardSnapshot(keys, consumers, now))),
      this.redis.pipeline().exists(this.keys.drainFlag).hgetall(this.keys.gpuWorkers).exec(),
    ]);
    const [drain, workers] = (home ?? []) as PipelineResult;
    const oldest = (tier: QueueTier) =>
      shards.reduce<number | null>((max, s) => {
        const wait = s.queueTiers[tier].oldestWaitMs;
        return wait === null ? max : Math.max(max ?? 0, wait);
      }, null);
    const sum = (f: (s: ShardSnapshot) => number) => shards.reduce((n, s) => n + f(s), 0);
    return {
      at: now,
      prefix: this.keys.basePrefix,
      streams: shards.flatMap((s) => s.streams),
      dlqSize: sum((s) => s.dlqSize),
      queueLength: sum((s) => s.queueLength),
      queueTiers: {
        normal: { length: sum((s) => s.queueTiers.normal.length), oldestWaitMs: oldest('normal') },
        priority: { length: sum((s) => s.queueTiers.priority.length), oldestWaitMs: oldest('priority') },
      },
      draining: Number(ok(drain) ?? 0) === 1,
      gpuWorkers: parseWorkers(ok(workers), now),
      capacity: capacityOf(Object.values((ok(workers) as Record<string, string> | undefined) ?? {}), now),
    };
  }

  private async shardSnapshot(keys: StreamKeys, consumers: boolean, now: number): Promise<ShardSnapshot> {
    const streams = [keys.requestsPriority, keys.requests, keys.events, keys.progress, keys.dlq];
    const first = this.redis.pipeline();
    for (const stream of streams) {
      first.xlen(stream);
      first.xrevrange(stream, '+', '-', 'COUNT', 1);
      first.xinfo('GROUPS', stream);
    }
    first.zcard(keys.queue);
    // Per tier: how many, and the head (the next to start) whose submit time says how long the tier has waited.
    // The priority tier's jobs are also in queue:priority; the normal head is the first queue member not there.
    first.zcard(keys.queuePriority);
    first.zrange(keys.queuePriority, 0, 0);
    first.zrange(keys.queue, 0, NORMAL_HEAD_SCAN - 1);
    const results = ((await first.exec()) ?? []) as PipelineResult;

    const stats: StreamStats[] = streams.map((key, i) => {
      const [length, last, groups] = results.slice(i * 3, i * 3 + 3);
      const lastEntry = ok(last) as [string, string[]][] | undefined;
      return {
        // Without the prefix; with shards, the shard's tag stays in front (`{3}:jobs:requests`).
        name: key.slice(this.keys.basePrefix.length),
        key,
        length: Number(ok(length) ?? 0),
        lastId: lastEntry?.[0]?.[0],
        groups: parseGroupsReply(ok(groups)),
      };
    });
    const tail = results.slice(streams.length * 3);
    const queueLength = Number(ok(tail[0]) ?? 0);
    const priorityLength = Number(ok(tail[1]) ?? 0);
    const heads = {
      priority: firstMember(ok(tail[2])),
      normal: await this.firstNormal(keys, (ok(tail[3]) as string[] | undefined) ?? []),
    };
    const [waits] = await Promise.all([
      this.oldestWaits(keys, heads, now),
      this.addGroupDetails(stats, consumers, now),
    ]);
    return {
      streams: stats,
      dlqSize: stats.find((s) => s.key === keys.dlq)?.length ?? 0,
      queueLength,
      queueTiers: {
        normal: { length: Math.max(0, queueLength - priorityLength), oldestWaitMs: waits.normal },
        priority: { length: priorityLength, oldestWaitMs: waits.priority },
      },
    };
  }

  /** The first of the queue's head members that is not in the priority tier (checked in one round trip). */
  private async firstNormal(keys: StreamKeys, head: string[]): Promise<string | undefined> {
    if (head.length === 0) return undefined;
    const scores = await this.redis.zmscore(keys.queuePriority, ...head);
    return head.find((_, i) => scores[i] === null);
  }

  /** How long each tier's head has waited, from its view's createdAt (one round trip, only when a tier has one). */
  private async oldestWaits(
    keys: StreamKeys,
    heads: Record<QueueTier, string | undefined>,
    now: number,
  ): Promise<Record<QueueTier, number | null>> {
    const out: Record<QueueTier, number | null> = { normal: null, priority: null };
    const tiers = QUEUE_TIERS.filter((t) => heads[t] !== undefined);
    if (tiers.length === 0) return out;
    const read = this.redis.pipeline();
    for (const tier of tiers) read.hget(keys.view(heads[tier]!), 'createdAt');
    const results = ((await read.exec()) ?? []) as PipelineResult;
    tiers.forEach((tier, i) => {
      const value = ok(results[i]);
      const createdAt = typeof value === 'string' ? Date.parse(value) : NaN;
      if (Number.isFinite(createdAt)) out[tier] = Math.max(0, now - createdAt);
    });
    return out;
  }

  /** Oldest pending entry of every group with pending work (and, on request, its consumers). */
  private async addGroupDetails(stats: StreamStats[], consumers: boolean, now: number): Promise<void> {
    const second = this.redis.pipeline();
    const targets: { stream: StreamStats; group: GroupStats; kind: 'head' | 'consumers' }[] = [];
    for (const stream of stats) {
      for (const group of stream.groups) {
        if (group.pending > 0) {
          second.xpending(stream.key, group.group, '-', '+', 1);
          targets.push({ stream, group, kind: 'head' });
        }
        if (consumers) {
          second.xinfo('CONSUMERS', stream.key, group.group);
          targets.push({ stream, group, kind: 'consumers' });
        }
      }
    }
    if (targets.length === 0) return;
    const results = ((await second.exec()) ?? []) as PipelineResult;
    targets.forEach(({ group, kind }, i) => {
      const value = ok(results[i]);
      if (kind === 'head') group.oldestPending = parsePendingHead(value, now);
      else group.consumerList = parseConsumers(value);
    });
  }
}

function ok(result: [Error | null, unknown] | undefined): unknown {
  return result && !result[0] ? result[1] : undefined;
}

function firstMember(value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}

function stringOf(value: unknown, fallback: string): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : fallback;
}

function toMap(raw: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!Array.isArray(raw)) return map;
  for (let i = 0; i + 1 < raw.length; i += 2) map.set(String(raw[i]), raw[i + 1]);
  return map;
}

function parsePendingHead(raw: unknown, now: number): PendingHead | undefined {
  const row = Array.isArray(raw) ? (raw[0] as unknown) : undefined;
  if (!Array.isArray(row) || row.length < 4) return undefined;
  const id = String(row[0]);
  return {
    id,
    consumer: String(row[1]),
    ageMs: Math.max(0, now - Number(id.split('-')[0])),
    idleMs: Number(row[2]),
    deliveries: Number(row[3]),
  };
}

function parseConsumers(raw: unknown): ConsumerRow[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((fields) => {
    const info = toMap(fields);
    const inactive = info.get('inactive');
    return {
      name: stringOf(info.get('name'), ''),
      pending: Number(info.get('pending') ?? 0),
      idleMs: Number(info.get('idle') ?? 0),
      ...(inactive === undefined || inactive === null ? {} : { inactiveMs: Number(inactive) }),
    };
  });
}

function parseWorkers(raw: unknown, now: number): GpuWorkerRow[] {
  if (typeof raw !== 'object' || raw === null) return [];
  return Object.entries(raw as Record<string, string>)
    .map(([worker, json]) => {
      let slots = 0;
      let expiresAt = 0;
      try {
        const advert = JSON.parse(json) as { slots?: unknown; expiresAt?: unknown };
        slots = Number(advert.slots) || 0;
        expiresAt = Number(advert.expiresAt) || 0;
      } catch {
        // An unreadable advert counts as a stale worker.
      }
      return { worker, slots, expiresAt, live: expiresAt > now };
    })
    .sort((a, b) => a.worker.localeCompare(b.worker));
}
