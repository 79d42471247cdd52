import { Inject, Injectable } from '@nestjs/common';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store';
import { imageInputs, releaseJobInputs, retainJobInputs } from '../../blobs/job-input-blobs';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { fairAccountOf, JobLedger, JobViewRepository } from '../generation';
import { consumerGroupSpecs, type ConsumerGroupName } from '../../streams/consumer-groups';
import { parseDlqEntry, type DlqRecord } from '../../streams/dead-letter.writer';
import { decodeEntry, encodeEnvelope, ENVELOPE_FIELD, makeEnvelope, TICKET_FIELD } from '../../streams/envelope.codec';
import type { JobEnvelope, JobEventPayloads } from '../../streams/job-event.types';
import { StreamKeys } from '../../streams/stream-keys';
import { StreamReader } from '../../streams/stream.reader';
import { compareStreamIds } from '../../streams/stream-reply.parser';
import { StreamPublisher } from '../../streams/stream.publisher';
import { DeadLetterStore } from './dead-letter.store';

/** Who re-drove a dead letter and why, carried in the new request (and shown by `cli job`). */
export interface RedriveAudit {
  by: string;
  reason: string;
  at: string;
  dlqEntryId: string;
  originalJobId: string;
}

/** `job.requested` of a re-drive: the declared payload plus the audit record (extra fields pass validation). */
type RedriveRequestPayload = JobEventPayloads['job.requested'] & { redrive: RedriveAudit };

export interface DlqItem extends DlqRecord {
  /** The new job a re-drive created from this entry; set once, so it is never re-driven twice. */
  redrivenAs?: string;
  /** Why it cannot be re-driven, when it cannot (not a request, not from the working group, unreadable). */
  notRedrivable?: string;
}

export interface RedriveResult {
  dlqEntryId: string;
  originalJobId: string;
  jobId: string;
  /** The request stream the job is dispatched into, in its turn of the fair queue. */
  stream: string;
  ticket: number;
}

export type RedriveProblem = 'not_found' | 'not_redrivable' | 'already_redriven' | 'inputs_expired';

export class RedriveError extends Error {
  constructor(
    readonly problem: RedriveProblem,
    message: string,
    readonly redrivenAs?: string,
  ) {
    super(message);
    this.name = 'RedriveError';
  }
}

/** Markers outlive the DLQ entries they guard in practice (the DLQ is never trimmed automatically). */
const REDRIVE_MARKER_TTL_SECONDS = 400 * 24 * 3600;
/** A re-drive is an operator's decision: the user's active-job limit does not apply to it. */
const NO_USER_LIMIT = 1_000_000_000;
const PAGE = 1_000;
const MAX_ENTRIES = 100_000;

/**
 * Reads the DLQ and re-drives dead letters. A re-drive appends a fresh `job.requested` with a new job id, the
 * original correlation id, `redriveOf` = the DLQ entry id and an audit record (who, why, when), through the same
 * atomic submit script the API uses (ticket, queue, read-your-writes record). Its idempotency key is the DLQ
 * entry id, so two operators re-driving the same entry at once create one job. The DLQ entry itself stays, as
 * the record of what failed. The one implementation behind `cli dlq` and the bot's /dlq and /redrive.
 */
@Injectable()
export class DlqService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
    private readonly ledger: JobLedger,
    private readonly letters: DeadLetterStore,
    private readonly views: JobViewRepository,
    private readonly streams: StreamReader,
  ) {}

  /** Entries in the DLQ (re-driven ones stay, as the record of what failed). */
  size(): Promise<number> {
    return this.letters.size();
  }

  /** Newest first. With `jobId`, scans up to MAX_ENTRIES for that job's dead letters. */
  async list({ limit = 50, jobId }: { limit?: number; jobId?: string } = {}): Promise<DlqItem[]> {
    // A job's letters are in its shard; otherwise the newest of every shard's DLQ, merged.
    const shards = jobId ? [this.keys.forJob(jobId)] : this.letters.shards;
    const perShard = await Promise.all(shards.map((keys) => this.newestOf(keys, limit, jobId)));
    const records = perShard.flat().sort((a, b) => compareStreamIds(b.pos, a.pos) || b.id.localeCompare(a.id));
    return this.annotate(records.slice(0, limit).map(withoutPosition));
  }

  private async newestOf(keys: StreamKeys, limit: number, jobId?: string): Promise<(DlqRecord & { pos: string })[]> {
    const records: (DlqRecord & { pos: string })[] = [];
    let end = '+';
    for (let read = 0; read < MAX_ENTRIES && records.length < limit;) {
      const count = jobId ? PAGE : Math.min(PAGE, limit - records.length);
      const entries = await this.letters.newestFrom(end, count, keys);
      for (const entry of entries) {
        const record = parseDlqEntry(this.letters.qualify(keys, entry.id), entry.fields ?? []);
        if (!jobId || record.jobId === jobId) records.push({ ...record, pos: entry.id });
      }
      read += entries.length;
      if (entries.length < count) break;
      end = `(${entries[entries.length - 1].id}`;
    }
    return records;
  }

  /** Every entry, oldest first (bounded). */
  async all(): Promise<DlqItem[]> {
    const records: (DlqRecord & { pos: string })[] = [];
    for (const keys of this.letters.shards) {
      let start = '-';
      for (let read = 0; read < MAX_ENTRIES;) {
        const entries = await this.letters.oldestFrom(start, PAGE, keys);
        for (const entry of entries) {
          records.push({ ...parseDlqEntry(this.letters.qualify(keys, entry.id), entry.fields ?? []), pos: entry.id });
        }
        read += entries.length;
        if (entries.length < PAGE) break;
        start = `(${entries[entries.length - 1].id}`;
      }
    }
    records.sort((a, b) => compareStreamIds(a.pos, b.pos));
    return this.annotate(records.slice(0, MAX_ENTRIES).map(withoutPosition));
  }

  async get(dlqEntryId: string): Promise<DlqItem | undefined> {
    const entry = await this.letters.entry(dlqEntryId);
    if (!entry) return undefined;
    return (await this.annotate([parseDlqEntry(dlqEntryId, entry.fields ?? [])]))[0];
  }

  async redrive(
    dlqEntryId: string,
    { by, reason, force = false }: { by: string; reason: string; force?: boolean },
  ): Promise<RedriveResult> {
    const item = await this.get(dlqEntryId);
    if (!item) throw new RedriveError('not_found', `no DLQ entry ${dlqEntryId}`);
    if (item.redrivenAs) {
      throw new RedriveError(
        'already_redriven',
        `${dlqEntryId} was already re-driven as job ${item.redrivenAs}`,
        item.redrivenAs,
      );
    }
    if (item.notRedrivable) throw new RedriveError('not_redrivable', `${dlqEntryId}: ${item.notRedrivable}`);
    const original = requestOf(item)!;
    if (!force) await this.checkInputs(dlqEntryId, original);

    // In the shard of the dead letter, where its re-drive marker is (STREAM_SHARDS).
    const jobId = this.letters.locate(dlqEntryId).keys.mintJobId();
    const p = original.payload;
    const payload: RedriveRequestPayload = {
      workflow: p.workflow,
      inputs: p.inputs,
      userId: p.userId,
      source: 'redrive',
      ...(p.priority ? { priority: true } : {}),
      ...(p.telegram ? { telegram: p.telegram } : {}),
      redriveOf: dlqEntryId,
      redrive: { by, reason, at: new Date().toISOString(), dlqEntryId, originalJobId: original.jobId },
    };
    const envelope = makeEnvelope(
      'job.requested',
      { jobId, correlationId: original.correlationId, actor: `operator:${by}` },
      payload,
    );
    // The ticket is drawn by the submit script and appended as the entry's own field.
    const envelopeJson = encodeEnvelope(envelope);
    const stream = this.publisher.streamFor(envelope);
    // The new job holds the images itself: the dead one's hold lapses at its BLOB_TTL_SECONDS.
    await retainJobInputs(this.blobs, jobId, p.inputs, this.config.blobs.ttlSeconds);
    const outcome = await this.ledger.acceptRequest({
      jobId,
      idempotencyKey: this.letters.markerKey(dlqEntryId),
      userId: p.userId,
      maxActive: NO_USER_LIMIT,
      envelopeJson,
      stream,
      workflow: p.workflow,
      createdAt: envelope.occurredAt,
      priority: p.priority === true,
      fingerprint: 'redrive',
      account: fairAccountOf(p.userId),
      dispatchAhead: this.config.queueDispatchAhead,
      idempotencyTtlSeconds: REDRIVE_MARKER_TTL_SECONDS,
      recordTtlSeconds: Math.ceil(this.config.retentionMs / 1000),
    });
    if (outcome.kind !== 'accepted') await releaseJobInputs(this.blobs, jobId, p.inputs);
    if (outcome.kind === 'duplicate') {
      throw new RedriveError(
        'already_redriven',
        `${dlqEntryId} was already re-driven as job ${outcome.jobId}`,
        outcome.jobId,
      );
    }
    if (outcome.kind !== 'accepted') throw new Error(`unexpected submit outcome ${outcome.kind}`);
    return {
      dlqEntryId,
      originalJobId: original.jobId,
      jobId,
      stream: stream.slice(this.keys.forJob(jobId).prefix.length),
      ticket: outcome.ticket,
    };
  }

  /** The audit record of a job created by a re-drive, read from its request entry. */
  async redriveAuditOf(jobId: string): Promise<RedriveAudit | undefined> {
    // The record's entryId was written by releases before the view named it.
    const entryId = await this.views.fieldOrRecorded(jobId, 'requestEntryId', 'entryId');
    if (!entryId) return undefined;
    for (const stream of this.keys.forJob(jobId).workStreams) {
      const entry = (await this.streams.range(stream, entryId, entryId))[0];
      const decoded = entry?.fields ? decodeEntry(entry.fields) : undefined;
      if (decoded?.ok && decoded.envelope.jobId === jobId) {
        return (decoded.envelope.payload as Partial<RedriveRequestPayload>).redrive;
      }
    }
    return undefined;
  }

  private async annotate(records: DlqRecord[]): Promise<DlqItem[]> {
    if (records.length === 0) return [];
    const markers = await this.letters.markers(records.map((r) => r.id));
    const specs = consumerGroupSpecs(this.keys, this.config);
    return records.map((record, i) => {
      const marker = markers[i];
      const item: DlqItem = { ...record };
      if (marker) item.redrivenAs = marker.slice(0, marker.lastIndexOf('|'));
      const spec = specs[record.group as ConsumerGroupName] as (typeof specs)[ConsumerGroupName] | undefined;
      if (!requestOf(record)) {
        item.notRedrivable = record.type
          ? `a ${record.type} cannot be re-driven (only job.requested)`
          : 'the entry is not a readable job event';
      } else if (!spec?.deadLetterEndsJob) {
        item.notRedrivable = `dead-lettered by group ${record.group}, which does not run jobs; the job itself was not affected`;
      }
      return item;
    });
  }

  /** Image inputs live in the blob store with a TTL: a re-drive after they expired would fail at once. */
  private async checkInputs(dlqEntryId: string, request: JobEnvelope<'job.requested'>): Promise<void> {
    for (const [name, ref] of imageInputs(request.payload.inputs)) {
      if (!(await this.blobs.exists(ref.hash))) {
        throw new RedriveError(
          'inputs_expired',
          `${dlqEntryId}: input "${name}" (blob ${ref.hash.slice(0, 12)}…) is no longer in the blob store; ` +
            'the re-driven job would fail (use --force to re-drive anyway)',
        );
      }
    }
  }
}

/** A record without the stream id it was sorted by (`id` is what operators see: shard-qualified with shards). */
function withoutPosition({ pos: _pos, ...record }: DlqRecord & { pos: string }): DlqRecord {
  return record;
}

/** The dead `job.requested` an entry holds, if it holds one. */
export function requestOf(record: DlqRecord): JobEnvelope<'job.requested'> | undefined {
  if (!record.raw) return undefined;
  const decoded = decodeEntry([ENVELOPE_FIELD, record.raw, ...(record.ticket ? [TICKET_FIELD, record.ticket] : [])]);
  return decoded.ok && decoded.envelope.type === 'job.requested' ? decoded.envelope : undefined;
}
