import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { BLOB_STORE, type BlobStore } from '../../../blobs/blob-store';
import { releaseJobInputs, retainJobInputs } from '../../../blobs/job-input-blobs';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { parseDlqEntry, type DlqRecord } from '../../../streams/dead-letter.writer';
import { decodeEntry, encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../../streams/envelope.codec';
import type { JobEnvelope } from '../../../streams/job-event.types';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { StreamPublisher } from '../../../streams/stream.publisher';
import { JobLedger, TICKET_PLACEHOLDER } from '../../generation';

export type RedriveResult =
  | { kind: 'not-found' }
  | { kind: 'new-job'; jobId: string; request: JobEnvelope<'job.requested'> }
  | { kind: 'reappended'; stream: string };

const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** Re-driven work was already accepted once: the per-user limit does not apply again. */
const NO_LIMIT = 1_000_000;

/**
 * Re-drives one DLQ entry and removes it from the DLQ:
 * - a dead `job.requested` (the work failed) becomes a NEW job with the same inputs (`source: "redrive"`,
 *   `redriveOf`: the DLQ id), because the old job is final in the projection and workers skip final jobs. It goes
 *   through the submit script, keyed by the DLQ id, so re-driving the same entry twice makes one job;
 * - any other dead event (e.g. a delivery that kept failing) is appended again, unchanged, to its stream, where
 *   its consumer groups handle it like new (their handlers are idempotent).
 */
@Injectable()
export class DlqRedrive {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly publisher: StreamPublisher,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly ledger: JobLedger,
  ) {}

  async find(dlqId: string): Promise<DlqRecord | undefined> {
    if (!ENTRY_ID.test(dlqId)) return undefined;
    const [entry] = await this.redis.xrange(this.keys.dlq, dlqId, dlqId);
    return entry ? parseDlqEntry(entry[0], entry[1]) : undefined;
  }

  async redrive(dlqId: string, actor: string): Promise<RedriveResult> {
    const record = await this.find(dlqId);
    if (!record) return { kind: 'not-found' };
    const decoded = decodeEntry([ENVELOPE_FIELD, record.raw]);
    let result: RedriveResult;
    if (decoded.ok && decoded.envelope.type === 'job.requested') {
      result = await this.resubmit(dlqId, decoded.envelope, actor);
    } else {
      const stream = record.stream.startsWith(this.keys.prefix) ? record.stream : this.keys.events;
      await this.redis.xadd(stream, '*', ENVELOPE_FIELD, record.raw);
      result = { kind: 'reappended', stream };
    }
    await this.redis.xdel(this.keys.dlq, dlqId);
    return result;
  }

  private async resubmit(dlqId: string, original: JobEnvelope<'job.requested'>, actor: string): Promise<RedriveResult> {
    const jobId = randomUUID();
    const { ticket: _ticket, ...rest } = original.payload;
    // ticket first: the submit script writes the real one over the first placeholder of the payload.
    const request = makeEnvelope(
      'job.requested',
      { jobId, correlationId: original.correlationId, actor },
      { ticket: 0, ...rest, source: 'redrive', redriveOf: dlqId },
    );
    const body = encodeEnvelope(request).replace(
      '"payload":{"ticket":0,',
      `"payload":{"ticket":"${TICKET_PLACEHOLDER}",`,
    );
    await retainJobInputs(this.blobs, jobId, rest.inputs, this.config.blobs.ttlSeconds);
    const outcome = await this.ledger.acceptRequest({
      jobId,
      idempotencyKey: this.keys.idempotency('redrive', dlqId),
      userId: rest.userId,
      maxActive: NO_LIMIT,
      envelopeJson: body,
      stream: this.publisher.streamFor(request),
      workflow: rest.workflow,
      createdAt: request.occurredAt,
      priority: rest.priority === true,
      fingerprint: dlqId,
      idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
      recordTtlSeconds: Math.ceil(this.config.retentionMs / 1000),
    });
    if (outcome.kind !== 'accepted') await releaseJobInputs(this.blobs, jobId, rest.inputs);
    const newId = outcome.kind === 'accepted' || outcome.kind === 'duplicate' ? outcome.jobId : jobId;
    return { kind: 'new-job', jobId: newId, request: { ...request, jobId: newId } };
  }
}
