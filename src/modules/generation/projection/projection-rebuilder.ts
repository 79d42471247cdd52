import type { RedisClient } from '../../../redis/redis-client';
import { decodeEntry, ENVELOPE_FIELD, TICKET_FIELD } from '../../../streams/envelope.codec';
import type { StreamKeys } from '../../../streams/stream-keys';
import { compareStreamIds, parseEntries } from '../../../streams/stream-reply.parser';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import type { JobView } from './job-view';
import { hashToView } from './job-view.codec';
import { reduceJobView } from './job-view.reducer';

export interface ProjectionDifference {
  jobId: string;
  field: string;
  live: unknown;
  replayed: unknown;
}

const PAGE = 1_000;

/**
 * Replays the request and event streams through the same reducer the projector uses. The views it returns are
 * what `jobs:view:*` must equal; `cli projections rebuild` writes them back and reports the differences.
 */
export class ProjectionRebuilder {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  /** Every shard's streams (STREAM_SHARDS): a job's events are all in its own shard, so each is replayed alone. */
  async replay(): Promise<Map<string, JobView>> {
    const views = new Map<string, JobView>();
    for (const keys of this.keys.shards) await this.replayShard(keys, views);
    return views;
  }

  private async replayShard(keys: StreamKeys, views: Map<string, JobView>): Promise<void> {
    const entries: { id: string; envelope: AnyJobEnvelope; order: number }[] = [];
    const streams = [keys.requestsPriority, keys.requests, keys.events];
    for (const [order, stream] of streams.entries()) {
      for await (const { id, envelope } of this.read(stream)) entries.push({ id, envelope, order });
    }
    // Requests first for equal ids is irrelevant to the reducer, but a stable order keeps runs comparable.
    entries.sort((a, b) => compareStreamIds(a.id, b.id) || a.order - b.order);
    for (const { id, envelope } of entries) {
      const view = reduceJobView(views.get(envelope.jobId), envelope);
      if (envelope.type === 'job.requested') view.requestEntryId ??= id;
      views.set(envelope.jobId, view);
    }
    // Jobs still waiting for their turn in the fair queue: their request is held until it is dispatched.
    for await (const envelope of this.held(keys)) {
      if (!views.has(envelope.jobId)) views.set(envelope.jobId, reduceJobView(undefined, envelope));
    }
  }

  private async *held(keys: StreamKeys): AsyncGenerator<AnyJobEnvelope> {
    const pending = await this.redis.zrange(keys.queuePending, 0, -1);
    for (let i = 0; i < pending.length; i += PAGE) {
      const read = this.redis.pipeline();
      // The held envelope ('e') and its ticket ('n', which the submit script appends as the entry's ticket field).
      for (const jobId of pending.slice(i, i + PAGE)) read.hmget(keys.queuedRequest(jobId), 'e', 'n');
      for (const [err, reply] of (await read.exec()) ?? []) {
        const [body, ticket] = (reply ?? []) as (string | null)[];
        if (err || typeof body !== 'string') continue;
        const decoded = decodeEntry([ENVELOPE_FIELD, body, ...(ticket ? [TICKET_FIELD, ticket] : [])]);
        if (decoded.ok) yield decoded.envelope;
      }
    }
  }

  async diff(replayed: Map<string, JobView>): Promise<ProjectionDifference[]> {
    const differences: ProjectionDifference[] = [];
    for (const [jobId, expected] of replayed) {
      const live = hashToView(await this.redis.hgetall(this.keys.view(jobId)));
      if (!live) {
        differences.push({ jobId, field: '*', live: undefined, replayed: expected.status });
        continue;
      }
      const fields = new Set([...Object.keys(live), ...Object.keys(expected)]);
      for (const field of fields) {
        const a = JSON.stringify((live as unknown as Record<string, unknown>)[field]);
        const b = JSON.stringify((expected as unknown as Record<string, unknown>)[field]);
        if (a !== b) differences.push({ jobId, field, live: a && JSON.parse(a), replayed: b && JSON.parse(b) });
      }
    }
    return differences;
  }

  private async *read(stream: string): AsyncGenerator<{ id: string; envelope: AnyJobEnvelope }> {
    let start = '-';
    for (let page = 0; page < 1_000_000; page++) {
      const raw = (await this.redis.xrange(stream, start, '+', 'COUNT', PAGE)) as unknown;
      const entries = parseEntries(raw);
      for (const entry of entries) {
        if (!entry.fields) continue;
        const decoded = decodeEntry(entry.fields);
        if (decoded.ok) yield { id: entry.id, envelope: decoded.envelope };
      }
      if (entries.length < PAGE) return;
      start = `(${entries[entries.length - 1].id}`;
    }
  }
}
