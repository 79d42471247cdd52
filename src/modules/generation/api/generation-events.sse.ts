import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Response } from 'express';
import type { AnyJobEnvelope } from '../../../streams/job-event.types';
import { StreamTail, type TailedEvent } from '../../../streams/stream-tail';
import { compareStreamEntries } from '../../../streams/stream-reply.parser';
import { isTerminal, type JobStatus, type JobView } from '../projection/job-view';
import { reduceJobView } from '../projection/job-view.reducer';
import { JobTimelineReader } from '../projection/job-timeline.reader';

const KEEPALIVE_MS = 15_000;
const ENDING_TYPES = new Set(['job.completed', 'job.cancelled']);

/**
 * Server-Sent Events of one job: its past events (timeline + the tail's recent buffer), then live ones from the
 * shared stream tail, in stream order and without duplicates. Ends after the job's final event.
 */
@Injectable()
export class GenerationEventsSse implements BeforeApplicationShutdown {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly timeline: JobTimelineReader,
    private readonly tail: StreamTail,
  ) {}

  async stream(view: JobView, response: Response): Promise<void> {
    response.status(200);
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('Connection', 'keep-alive');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();

    const sent = new Set<string>();
    const buffered: TailedEvent[] = [];
    let replaying = true;
    let ended = false;
    // The job's state as the client has seen it: each event is folded with the one reducer, so every event's
    // `status` is the status after it (the final event says how the job ended).
    let seen: JobView | undefined;
    const finish = () => {
      if (ended) return;
      ended = true;
      this.open.delete(finish);
      unsubscribe();
      clearInterval(keepalive);
      response.end();
    };
    const send = (event: TailedEvent) => {
      if (ended || sent.has(event.envelope.eventId)) return;
      sent.add(event.envelope.eventId);
      seen = reduceJobView(seen, event.envelope);
      response.write(formatEvent(event, seen.status));
      if (isFinal(event.envelope)) finish();
    };
    const unsubscribe = this.tail.subscribe((event) => {
      if (event.envelope.jobId !== view.id) return;
      if (replaying) buffered.push(event);
      else send(event);
    });
    const keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
    response.on('close', finish);
    this.open.add(finish);

    const past = [...(await this.pastEvents(view.id)), ...this.tail.recent(view.id)];
    for (const event of sortEvents(past)) send(event);
    replaying = false;
    for (const event of sortEvents(buffered.splice(0))) send(event);
    // A finished job whose events were trimmed away still gets a closed stream, not a hanging one.
    if (!ended && isTerminal(view.status)) finish();
  }

  /** Open streams would keep the HTTP server from closing: end them (clients reconnect elsewhere). */
  beforeApplicationShutdown(): void {
    for (const finish of [...this.open]) finish();
  }

  private async pastEvents(jobId: string): Promise<TailedEvent[]> {
    const steps = await this.timeline.read(jobId);
    return steps.map((step) => ({ stream: step.stream, id: step.entryId, envelope: step.envelope }));
  }
}

/** `job.failed` is final only when no retry follows; dead letters end the job only when they say so. */
function isFinal(envelope: AnyJobEnvelope): boolean {
  if (ENDING_TYPES.has(envelope.type)) return true;
  if (envelope.type === 'job.failed') return !envelope.payload.willRetry;
  if (envelope.type === 'job.dead-lettered') return envelope.payload.endsJob;
  return false;
}

function sortEvents(events: TailedEvent[]): TailedEvent[] {
  return events.sort(compareStreamEntries);
}

function formatEvent({ id, envelope }: TailedEvent, status: JobStatus): string {
  const data = JSON.stringify({
    type: envelope.type,
    jobId: envelope.jobId,
    status,
    occurredAt: envelope.occurredAt,
    payload: envelope.payload,
  });
  return `id: ${id}\nevent: ${envelope.type}\ndata: ${data}\n\n`;
}
