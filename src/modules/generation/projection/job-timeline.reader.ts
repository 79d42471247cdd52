import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../../../redis/redis-client';
import { decodeEntry } from '../../../streams/envelope.codec';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import { REDIS } from '../../../streams/redis.provider';
import { StreamKeys } from '../../../streams/stream-keys';
import { compareStreamEntries } from '../../../streams/stream-reply.parser';

export interface TimelineStep {
  at: string;
  type: string;
  actor: string;
  stream: string;
  entryId: string;
  /** Milliseconds since the job's first event and since the previous step. */
  sinceStartMs: number;
  sincePreviousMs: number;
  summary: string;
  envelope: AnyJobEnvelope;
}

/** A job's events in order, from the timeline index the projector keeps (`jobs:timeline:<id>`). */
@Injectable()
export class JobTimelineReader {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
  ) {}

  async read(jobId: string): Promise<TimelineStep[]> {
    const members = await this.redis.zrange(this.keys.timeline(jobId), 0, -1);
    const pipeline = this.redis.pipeline();
    const refs = members.map((member) => {
      const split = member.lastIndexOf('|');
      const ref = { stream: member.slice(0, split), id: member.slice(split + 1) };
      pipeline.xrange(`${this.keys.forJob(jobId).prefix}${ref.stream}`, ref.id, ref.id);
      return ref;
    });
    const results = (await pipeline.exec()) ?? [];
    const found: { stream: string; id: string; envelope: AnyJobEnvelope }[] = [];
    results.forEach(([err, value], i) => {
      const entry = !err && Array.isArray(value) ? (value[0] as [string, string[]] | undefined) : undefined;
      const decoded = entry ? decodeEntry(entry[1]) : undefined;
      if (decoded?.ok) found.push({ ...refs[i], envelope: decoded.envelope });
    });
    found.sort(compareStreamEntries);
    const start = found[0] ? Date.parse(found[0].envelope.occurredAt) : 0;
    let previous = start;
    return found.map(({ stream, id, envelope }) => {
      const at = Date.parse(envelope.occurredAt);
      const step: TimelineStep = {
        at: envelope.occurredAt,
        type: envelope.type,
        actor: envelope.actor,
        stream,
        entryId: id,
        sinceStartMs: at - start,
        sincePreviousMs: at - previous,
        summary: summarize(envelope),
        envelope,
      };
      previous = at;
      return step;
    });
  }
}

export function summarize(envelope: AnyJobEnvelope): string {
  switch (envelope.type) {
    case 'job.requested':
      return `workflow=${envelope.payload.workflow} user=${envelope.payload.userId} ticket=${envelope.ticket ?? '-'}`;
    case 'job.accepted':
      return `instance=${envelope.payload.instance} prompt=${envelope.payload.promptId} attempt=${envelope.payload.attempt}`;
    case 'job.started':
      return `instance=${envelope.payload.instance}`;
    case 'job.progress':
      return `${envelope.payload.value}/${envelope.payload.max}`;
    case 'job.completed':
      return `${envelope.payload.outputs.length} output(s), run ${envelope.payload.timings.runMs} ms, queued ${envelope.payload.timings.queuedMs} ms`;
    case 'job.failed':
      return `${envelope.payload.code}: ${envelope.payload.message}${envelope.payload.willRetry ? ' (will retry)' : ''}`;
    case 'job.cancel-requested':
      return `by ${envelope.payload.by}`;
    case 'job.cancelled':
      return `by ${envelope.payload.by}${envelope.payload.whileQueued ? ' while queued' : ' while running'}`;
    case 'job.delivered':
      return `chat=${envelope.payload.chatId} message=${envelope.payload.messageId}`;
    case 'job.dead-lettered':
      return `${envelope.payload.reason} (deliveries=${envelope.payload.deliveries})`;
  }
}
