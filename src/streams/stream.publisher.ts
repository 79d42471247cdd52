import type { RedisClient } from '../redis/redis-client';
import { PUBLISH_ONCE } from '../redis/scripts';
import type { ChainableCommander } from 'ioredis';
import { encodeEnvelope, ENVELOPE_FIELD, entryFields, makeEnvelope, type EnvelopeMeta } from './envelope.codec';
import type { JobEnvelope, JobEventPayloads, JobEventType } from './job-event.types';
import type { StreamKeys } from './stream-keys';

/** How long the last progress tick of a job stays readable for GET /v1/generations/:id. */
const LAST_PROGRESS_TTL_SECONDS = 3600;

/** Appends job events to the stream their type belongs to. The only writer of the job streams. */
export class StreamPublisher {
  constructor(
    private readonly redis: RedisClient,
    readonly keys: StreamKeys,
    private readonly progressMaxLen = 10_000,
  ) {}

  /** The stream of the event's type, in the job's shard (STREAM_SHARDS: the job id names it). */
  streamFor(envelope: JobEnvelope): string {
    const keys = this.keys.forJob(envelope.jobId);
    if (envelope.type === 'job.requested') {
      return (envelope as JobEnvelope<'job.requested'>).payload.priority ? keys.requestsPriority : keys.requests;
    }
    return envelope.type === 'job.progress' ? keys.progress : keys.events;
  }

  async publish<T extends JobEventType>(
    type: T,
    meta: EnvelopeMeta,
    payload: JobEventPayloads[T],
  ): Promise<{ id: string; envelope: JobEnvelope<T> }> {
    const envelope = makeEnvelope(type, meta, payload);
    if (type !== 'job.progress') {
      // One append needs no MULTI: a plain XADD is one round trip and two fewer commands.
      const id = await this.redis.xadd(this.streamFor(envelope), '*', ...entryFields(envelope));
      return { id: String(id), envelope };
    }
    const multi = this.redis.multi();
    this.append(multi, envelope);
    const results = (await multi.exec()) ?? [];
    const [err, id] = results[0] ?? [new Error('empty MULTI reply'), null];
    if (err) throw err;
    return { id: String(id), envelope };
  }

  /**
   * Appends the event only if `markerKey` was not set yet, atomically (one script): for events that must exist once
   * although two actors may decide to send them. Returns the entry id, or null when it had been sent already.
   */
  async publishOnce<T extends JobEventType>(
    markerKey: string,
    markerTtlSeconds: number,
    type: T,
    meta: EnvelopeMeta,
    payload: JobEventPayloads[T],
  ): Promise<string | null> {
    const envelope = makeEnvelope(type, meta, payload);
    const id = await PUBLISH_ONCE.run(
      this.redis,
      [markerKey, this.streamFor(envelope)],
      [String(markerTtlSeconds), encodeEnvelope(envelope)],
    );
    return typeof id === 'string' ? id : null;
  }

  /**
   * Appends entries exactly as given (a replay copies entries with their fields), in one pipeline; throws the
   * first append that failed.
   */
  async appendRaw(entries: readonly { stream: string; fields: readonly string[] }[]): Promise<void> {
    // One pipeline per hash slot (a cluster refuses a pipeline across primaries); order kept within each stream.
    const bySlot = new Map<string, { stream: string; fields: readonly string[] }[]>();
    for (const entry of entries) {
      const tag = /\{([^{}]+)\}/.exec(entry.stream)?.[1] ?? '';
      bySlot.set(tag, [...(bySlot.get(tag) ?? []), entry]);
    }
    for (const group of bySlot.values()) {
      const pipeline = this.redis.pipeline();
      for (const { stream, fields } of group) pipeline.xadd(stream, '*', ...fields);
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    }
  }

  /** Adds the append to a caller's MULTI/pipeline, so it commits atomically with the caller's other writes. */
  append(chain: ChainableCommander, envelope: JobEnvelope): ChainableCommander {
    const stream = this.streamFor(envelope);
    if (envelope.type === 'job.progress') {
      const body = encodeEnvelope(envelope);
      // Progress is ephemeral and read without groups: trim hard, keep only the latest tick per job aside.
      chain.xadd(stream, 'MAXLEN', '~', String(this.progressMaxLen), '*', ENVELOPE_FIELD, body);
      chain.set(this.keys.lastProgress(envelope.jobId), body, 'EX', LAST_PROGRESS_TTL_SECONDS);
      return chain;
    }
    return chain.xadd(stream, '*', ...entryFields(envelope));
  }
}
