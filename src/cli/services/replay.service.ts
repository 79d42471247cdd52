import { Inject, Injectable } from '@nestjs/common';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store';
import { BlobStoreOpener } from '../../blobs/blob-store.opener';
import { imageInputs } from '../../blobs/job-input-blobs';
import { PROJECTED_FIELD } from '../../modules/generation';
import { decodeEntry } from '../../streams/envelope.codec';
import type { AnyJobEnvelope, BlobRef } from '../../streams/job-event.types';
import { StreamKeys } from '../../streams/stream-keys';
import { compareStreamEntries } from '../../streams/stream-reply.parser';
import { StreamReader } from '../../streams/stream.reader';
import { StreamPublisher } from '../../streams/stream.publisher';
import { CliFailure } from '../cli.errors';

const PAGE = 1_000;
/** Extra entry field naming the original `<prefix><stream>|<id>`; consumers read only the envelope field. */
export const REPLAY_OF_FIELD = 'replayOf';

/** The streams a replay reads, as StreamKeys getters: the same getter names the target stream in the sandbox. */
const REPLAYED = ['requestsPriority', 'requests', 'events'] as const;
type ReplayedStream = (typeof REPLAYED)[number];

export interface ReplayWindow {
  /** Inclusive XRANGE bounds (stream ids). */
  from: string;
  to: string;
  types?: ReadonlySet<string>;
  /** More matching entries than this and the replay refuses: a partial window is worse than none. */
  limit: number;
}

export interface ReplayItem {
  source: ReplayedStream;
  /** Stream name without the prefix. */
  stream: string;
  id: string;
  fields: string[];
  type: string;
  jobId: string;
  occurredAt: string;
  envelope: AnyJobEnvelope;
}

export interface ReplayPlan {
  items: ReplayItem[];
  /** Entries in the window that were not taken: another type, or unreadable. */
  skipped: { otherType: number; malformed: number };
}

export interface ReplayResult {
  target: string;
  appended: number;
  byStream: Record<string, number>;
  blobs: { copied: number; missing: number };
}

/**
 * Copies a window of the request and event streams, in id order, into another key prefix (a sandbox where a local
 * pipeline re-runs them) or, deliberately, back into the live one. Entries are appended unchanged (same event and
 * job ids) with a `replayOf` field naming the original entry; blobs the events refer to are copied into the
 * target prefix's own store.
 */
@Injectable()
export class ReplayService {
  constructor(
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly keys: StreamKeys,
    private readonly streams: StreamReader,
    private readonly publisher: StreamPublisher,
    private readonly blobStores: BlobStoreOpener,
  ) {}

  async plan(window: ReplayWindow): Promise<ReplayPlan> {
    const items: ReplayItem[] = [];
    const skipped = { otherType: 0, malformed: 0 };
    // Every shard's streams (STREAM_SHARDS); a job's entries are all in its shard.
    for (const [keys, source] of this.keys.shards.flatMap((k) => REPLAYED.map((r) => [k, r] as const))) {
      const key = keys[source];
      let start = window.from;
      for (;;) {
        const entries = await this.streams.range(key, start, window.to, PAGE);
        for (const entry of entries) {
          const decoded = entry.fields ? decodeEntry(entry.fields) : undefined;
          if (!decoded?.ok) {
            skipped.malformed++;
            continue;
          }
          if (window.types && !window.types.has(decoded.envelope.type)) {
            skipped.otherType++;
            continue;
          }
          if (items.length >= window.limit) {
            throw new CliFailure(
              `the window holds more than ${window.limit} entries to replay; narrow --from/--to/--type or raise --limit`,
            );
          }
          const envelope = decoded.envelope;
          items.push({
            source,
            // Without STREAM_PREFIX; with shards the shard's tag stays in front (`{3}:jobs:events`).
            stream: key.slice(this.keys.basePrefix.length),
            id: entry.id,
            fields: entry.fields!,
            type: envelope.type,
            jobId: envelope.jobId,
            occurredAt: envelope.occurredAt,
            envelope,
          });
        }
        if (entries.length < PAGE) break;
        start = `(${entries[entries.length - 1].id}`;
      }
    }
    items.sort(compareStreamEntries);
    return { items, skipped };
  }

  async apply(plan: ReplayPlan, targetPrefix: string): Promise<ReplayResult> {
    // The target is split like the source: each copy goes to its job's shard there.
    const target = StreamKeys.sharded(targetPrefix, this.keys.shardCount);
    const byStream: Record<string, number> = {};
    for (let i = 0; i < plan.items.length; i += PAGE) {
      const copies = plan.items.slice(i, i + PAGE).map((item) => {
        // The entry as it was (a replay of a replay names the first original), plus where it came from.
        // Not marked as applied: the target prefix's projector builds its own views from the copies.
        const fields = withoutField(withoutField(item.fields, REPLAY_OF_FIELD), PROJECTED_FIELD);
        const origin = fieldValue(item.fields, REPLAY_OF_FIELD) ?? `${this.keys.basePrefix}${item.stream}|${item.id}`;
        byStream[item.stream] = (byStream[item.stream] ?? 0) + 1;
        return { stream: target.forJob(item.jobId)[item.source], fields: [...fields, REPLAY_OF_FIELD, origin] };
      });
      await this.publisher.appendRaw(copies);
    }
    const blobs = await this.copyBlobs(plan, target);
    return { target: targetPrefix, appended: plan.items.length, byStream, blobs };
  }

  /**
   * Every deployment prefix owns its blobs (its own index, and its own namespace in a folder or bucket), so a
   * sandbox can never delete what the live prefix still holds: each blob the window refers to is copied into the
   * target's store with a `replay` hold lasting as long as the source keeps it.
   */
  private async copyBlobs(plan: ReplayPlan, target: StreamKeys): Promise<ReplayResult['blobs']> {
    if (target.prefix === this.keys.prefix) return { copied: 0, missing: 0 };
    const refs = new Map(plan.items.flatMap((item) => blobRefs(item.envelope).map((b) => [b.hash, b] as const)));
    const source = this.blobStores.lifetimes(this.keys);
    const { store: targetStore, close } = await this.blobStores.open(target, { warn: () => undefined });
    let copied = 0;
    let missing = 0;
    try {
      for (const [hash, ref] of refs) {
        const due = await source.dueAt(hash);
        const bytes = due !== null && due > Date.now() ? await this.blobs.get(hash) : null;
        if (!bytes) {
          missing++;
          continue;
        }
        const ttlSeconds = Math.max(1, Math.ceil((due! - Date.now()) / 1000));
        await targetStore.put(bytes, ref.type, { holder: 'replay', ttlSeconds });
        copied++;
      }
    } finally {
      close();
    }
    return { copied, missing };
  }
}

function withoutField(fields: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] !== name) out.push(fields[i], fields[i + 1]);
  return out;
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function blobRefs(envelope: AnyJobEnvelope): BlobRef[] {
  if (envelope.type === 'job.completed') return envelope.payload.outputs;
  if (envelope.type !== 'job.requested') return [];
  return imageInputs(envelope.payload.inputs).map(([, ref]) => ref);
}
