import { Injectable } from '@nestjs/common';
import { decodeEntry } from '../../streams/envelope.codec';
import type { AnyJobEnvelope } from '../../streams/job-event.types';
import { StreamKeys } from '../../streams/stream-keys';
import { StreamReader } from '../../streams/stream.reader';

const PAGE = 1_000;

export interface FoundEvent {
  /** Stream name without the prefix, as the timeline index stores it. */
  stream: string;
  id: string;
  envelope: AnyJobEnvelope;
}

/**
 * Finds a job's events by reading a stream forward from an id, when the projector's timeline index is missing
 * them (projector behind or not running, index expired). Bounded: at most `limit` entries per stream are read.
 */
@Injectable()
export class JobEventsScanner {
  constructor(
    private readonly streams: StreamReader,
    private readonly keys: StreamKeys,
  ) {}

  /** Reads forward from `from` (inclusive; `(id` exclusive). */
  scan(jobId: string, streamKeys: readonly string[], from: string, limit: number): Promise<FoundEvent[]> {
    return this.read(jobId, streamKeys, from, limit, 'forward');
  }

  /** Reads backward from `from`: a job's request precedes its first event. */
  scanBack(jobId: string, streamKeys: readonly string[], from: string, limit: number): Promise<FoundEvent[]> {
    return this.read(jobId, streamKeys, from, limit, 'backward');
  }

  private async read(
    jobId: string,
    streamKeys: readonly string[],
    from: string,
    limit: number,
    direction: 'forward' | 'backward',
  ): Promise<FoundEvent[]> {
    const needle = `"jobId":${JSON.stringify(jobId)}`;
    const found: FoundEvent[] = [];
    for (const stream of streamKeys) {
      let start = from;
      for (let read = 0; read < limit;) {
        const count = Math.min(PAGE, limit - read);
        const entries =
          direction === 'forward'
            ? await this.streams.range(stream, start, '+', count)
            : await this.streams.revRange(stream, start, '-', count);
        for (const entry of entries) {
          // Cheap substring test first: most entries belong to other jobs.
          if (!entry.fields?.some((f) => f.includes(needle))) continue;
          const decoded = decodeEntry(entry.fields);
          if (decoded.ok && decoded.envelope.jobId === jobId) {
            found.push({
              stream: stream.slice(this.keys.forJob(jobId).prefix.length),
              id: entry.id,
              envelope: decoded.envelope,
            });
          }
        }
        read += entries.length;
        if (entries.length < count) break;
        start = `(${entries[entries.length - 1].id}`;
      }
    }
    return found;
  }
}
