import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import {
  JobTimelineReader,
  JobViewRepository,
  summarize,
  type JobView,
  type TimelineStep,
} from '../../modules/generation';
import { consumerGroupSpecs } from '../../streams/consumer-groups';
import type { JobEnvelope } from '../../streams/job-event.types';
import { StreamKeys } from '../../streams/stream-keys';
import { compareStreamEntries, compareStreamIds } from '../../streams/stream-reply.parser';
import { StreamReader } from '../../streams/stream.reader';
import { DlqService, type DlqItem, type RedriveAudit } from '../../modules/operations';
import { JobEventsScanner, type FoundEvent } from './job-events.scanner';

/** Entries read per stream when the timeline index is incomplete (projector behind, index expired). */
const SCAN_LIMIT = 20_000;

export type DeliveryStateName = 'acked' | 'pending' | 'waiting' | 'dead-lettered';

/** What one consumer group did with one entry. */
export interface DeliveryState {
  group: string;
  state: DeliveryStateName;
  /** Known for pending and dead-lettered entries, and for requests from the attempts their events report. */
  deliveries?: number;
  consumer?: string;
  idleMs?: number;
}

/** A step of the job's timeline (JobTimelineReader) as `cli job` shows it: with its attempt and deliveries. */
export interface JobStep extends TimelineStep {
  attempt?: number;
  deliveries: DeliveryState[];
}

export interface AttemptRecord {
  /** `dlq`: history copied into the dead letter; `pending`: attempts of an entry still being retried. */
  source: 'dlq' | 'pending';
  group: string;
  stream: string;
  entryId: string;
  at?: string;
  consumer?: string;
  delivery?: number;
  error: string;
}

export interface JobFailure {
  code: string;
  message: string;
  at?: string;
  attempt?: number;
  retriable?: boolean;
  /** Where the verdict comes from: the job's own `job.failed`, or the dead letter that ended it. */
  source: 'job.failed' | 'dead-letter' | 'view';
  final: boolean;
}

export interface JobReport {
  jobId: string;
  prefix: string;
  status?: string;
  view?: JobView;
  record?: Record<string, string>;
  timelineSource: 'index' | 'index+scan' | 'scan' | 'none';
  steps: JobStep[];
  lastProgress?: { value: number; max: number; at: string };
  failure?: JobFailure;
  attempts: AttemptRecord[];
  deadLetters: DlqItem[];
  redriveOf?: Partial<RedriveAudit> & { dlqEntryId: string };
  durations: { queueWaitMs?: number; runMs?: number; totalMs?: number };
}

/**
 * Everything known about one job, gathered for `cli job`: its events (the projector's timeline index, topped up
 * by a bounded scan of the streams for what the projector has not indexed yet), what each consumer group did
 * with each entry (XPENDING, last-delivered id, dead letters), the attempts history, the dead letters and their
 * re-drives, and the verdict: why it failed.
 */
@Injectable()
export class JobInspectorService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly views: JobViewRepository,
    private readonly timeline: JobTimelineReader,
    private readonly streams: StreamReader,
    private readonly scanner: JobEventsScanner,
    private readonly dlq: DlqService,
  ) {}

  /**
   * The keys of the job being inspected: its shard's (STREAM_SHARDS; the job id names it). Set by inspect(), one job
   * per CLI run.
   */
  private jobKeys?: StreamKeys;

  get prefix(): string {
    return this.current.prefix;
  }

  private get current(): StreamKeys {
    return this.jobKeys ?? this.keys;
  }

  async inspect(jobId: string): Promise<JobReport | undefined> {
    this.jobKeys = this.keys.forJob(jobId);
    const [view, record, indexed, progress, deadLetters] = await Promise.all([
      this.views.get(jobId),
      this.views.record(jobId),
      this.timeline.read(jobId),
      this.views.lastProgress(jobId),
      this.dlq.list({ limit: 100, jobId }),
    ]);
    const hasRecord = Object.keys(record).length > 0;
    const { events, source } = await this.collectEvents(jobId, indexed, hasRecord ? record : undefined, view);
    if (!view && !hasRecord && events.length === 0 && deadLetters.length === 0) return undefined;

    const steps = await this.withDeliveries(this.toSteps(events), deadLetters);
    const report: JobReport = {
      jobId,
      prefix: this.current.prefix,
      status: view?.status ?? (hasRecord ? record.status : undefined),
      view,
      record: hasRecord ? record : undefined,
      timelineSource: source,
      steps,
      lastProgress: progressOf(progress),
      attempts: await this.attempts(steps, deadLetters),
      deadLetters,
      durations: durations(steps, view),
    };
    report.failure = failureOf(steps, view, deadLetters);
    report.redriveOf = await this.redriveOf(jobId, steps);
    return report;
  }

  private async collectEvents(
    jobId: string,
    indexed: Awaited<ReturnType<JobTimelineReader['read']>>,
    record: Record<string, string> | undefined,
    view: JobView | undefined,
  ): Promise<{ events: FoundEvent[]; source: JobReport['timelineSource'] }> {
    const events: FoundEvent[] = indexed.map((s) => ({ stream: s.stream, id: s.entryId, envelope: s.envelope }));
    const seen = new Set(events.map((e) => `${e.stream}|${e.id}`));
    const hasRequest = events.some((e) => e.envelope.type === 'job.requested');
    // Start where the job started (or after what the index already has) rather than at the beginning of time.
    const createdMs = view?.createdAt ? Date.parse(view.createdAt) : undefined;
    const requestId = view?.requestEntryId ?? record?.entryId;
    const first = events[0]?.id ?? requestId ?? (createdMs !== undefined ? `${createdMs}-0` : '-');
    const last = events.length > 0 ? `(${events[events.length - 1].id}` : first;
    let requests: FoundEvent[] = [];
    if (!hasRequest) {
      // The accepted-job record names the request entry exactly; otherwise look back from the first event.
      requests = requestId ? await this.scanner.scan(jobId, this.current.workStreams, requestId, 1) : [];
      if (requests.length === 0) {
        const from = events[0]?.id ?? (createdMs !== undefined ? `${createdMs + 60_000}-0` : '+');
        requests = await this.scanner.scanBack(jobId, this.current.workStreams, from, SCAN_LIMIT);
      }
    }
    const scanned = [...requests, ...(await this.scanner.scan(jobId, [this.current.events], last, SCAN_LIMIT))].filter(
      (e) => !seen.has(`${e.stream}|${e.id}`),
    );
    events.push(...scanned);
    events.sort(compareStreamEntries);
    const source =
      indexed.length > 0 ? (scanned.length > 0 ? 'index+scan' : 'index') : scanned.length > 0 ? 'scan' : 'none';
    return { events, source };
  }

  private toSteps(events: FoundEvent[]): JobStep[] {
    const start = events[0] ? Date.parse(events[0].envelope.occurredAt) : 0;
    let previous = start;
    return events.map(({ stream, id, envelope }) => {
      const at = Date.parse(envelope.occurredAt);
      const payload = envelope.payload as { attempt?: unknown };
      const step: JobStep = {
        at: envelope.occurredAt,
        type: envelope.type,
        actor: envelope.actor,
        stream,
        entryId: id,
        sinceStartMs: at - start,
        sincePreviousMs: at - previous,
        ...(typeof payload.attempt === 'number' ? { attempt: payload.attempt } : {}),
        summary: summarize(envelope),
        deliveries: [],
        envelope,
      };
      previous = at;
      return step;
    });
  }

  /** Per entry and per group reading its stream: pending (XPENDING), acked (≤ last-delivered), dead-lettered. */
  private async withDeliveries(steps: JobStep[], deadLetters: DlqItem[]): Promise<JobStep[]> {
    // The job's own shard's groups: they read its streams (shard 0's name other streams).
    const specs = Object.values(consumerGroupSpecs(this.current, this.config));
    const groupsOf = (stream: string) =>
      specs.filter((s) => s.streams.includes(this.current.prefix + stream)).map((s) => s.group);
    const streams = [...new Set(steps.map((s) => s.stream))];
    const lastDelivered = new Map<string, string>();
    (await this.streams.groupsOfEach(streams.map((s) => this.current.prefix + s))).forEach((groups, i) => {
      for (const group of groups ?? []) lastDelivered.set(`${streams[i]}|${group.group}`, group.lastDeliveredId);
    });
    const asked: { step: JobStep; group: string }[] = [];
    for (const step of steps) {
      for (const group of groupsOf(step.stream)) asked.push({ step, group });
    }
    const rows = await this.streams.pendingRows(
      asked.map(({ step, group }) => ({ stream: this.current.prefix + step.stream, group, id: step.entryId })),
    );
    const maxAttempt = Math.max(0, ...steps.map((s) => s.attempt ?? 0));
    asked.forEach(({ step, group }, i) => {
      const row = rows[i];
      const letter = deadLetters.find(
        (d) => d.entryId === step.entryId && d.group === group && d.stream === this.current.prefix + step.stream,
      );
      let state: DeliveryState;
      if (row) {
        state = { group, state: 'pending', consumer: row.consumer, idleMs: row.idleMs, deliveries: row.deliveries };
      } else if (letter) {
        state = { group, state: 'dead-lettered', deliveries: letter.deliveries };
      } else {
        const delivered = lastDelivered.get(`${step.stream}|${group}`);
        if (delivered === undefined) return; // the group does not exist (that role never ran here)
        const acked = compareStreamIds(step.entryId, delivered) <= 0;
        state = { group, state: acked ? 'acked' : 'waiting' };
        // A request's attempt number is its delivery count in the gpu group (the runner reports it).
        if (acked && step.type === 'job.requested' && group === 'gpu' && maxAttempt > 0) state.deliveries = maxAttempt;
      }
      step.deliveries.push(state);
    });
    return steps;
  }

  private async attempts(steps: JobStep[], deadLetters: DlqItem[]): Promise<AttemptRecord[]> {
    const out: AttemptRecord[] = [];
    for (const letter of [...deadLetters].reverse()) {
      for (const raw of letter.history) {
        const h = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
        out.push({
          source: 'dlq',
          group: letter.group,
          stream: letter.stream.slice(this.current.prefix.length),
          entryId: letter.entryId,
          at: typeof h.at === 'string' ? h.at : undefined,
          consumer: typeof h.consumer === 'string' ? h.consumer : undefined,
          delivery: typeof h.delivery === 'number' ? h.delivery : undefined,
          error: typeof h.error === 'string' ? h.error : JSON.stringify(raw),
        });
      }
    }
    const live = steps.flatMap((step) =>
      step.deliveries.filter((d) => d.state === 'pending').map((d) => ({ step, group: d.group })),
    );
    if (live.length > 0) {
      const histories = await this.streams.attemptHistories(
        live.map(({ step, group }) => ({ group, stream: this.current.prefix + step.stream, id: step.entryId })),
      );
      histories.forEach((lines, i) => {
        for (const line of lines ?? []) {
          const h = safeJson(line);
          out.push({
            source: 'pending',
            group: live[i].group,
            stream: live[i].step.stream,
            entryId: live[i].step.entryId,
            at: typeof h.at === 'string' ? h.at : undefined,
            consumer: typeof h.consumer === 'string' ? h.consumer : undefined,
            delivery: typeof h.delivery === 'number' ? h.delivery : undefined,
            error: typeof h.error === 'string' ? h.error : line,
          });
        }
      });
    }
    return out;
  }

  private async redriveOf(jobId: string, steps: JobStep[]): Promise<JobReport['redriveOf']> {
    const request = steps.find((s) => s.type === 'job.requested')?.envelope;
    if (request?.type !== 'job.requested' || !request.payload.redriveOf) return undefined;
    const audit =
      (request.payload as { redrive?: Partial<RedriveAudit> }).redrive ?? (await this.dlq.redriveAuditOf(jobId));
    return { ...audit, dlqEntryId: request.payload.redriveOf };
  }
}

function failureOf(steps: JobStep[], view: JobView | undefined, deadLetters: DlqItem[]): JobFailure | undefined {
  const lastFailed = [...steps].reverse().find((s) => s.type === 'job.failed');
  const failed = lastFailed?.envelope.type === 'job.failed' ? lastFailed.envelope : undefined;
  const endingLetter = deadLetters.find((d) => !d.notRedrivable);
  if (view?.status === 'failed' && view.error?.code === 'dead_lettered' && endingLetter) {
    return {
      code: 'dead_lettered',
      message: endingLetter.reason,
      at: endingLetter.at,
      attempt: endingLetter.deliveries,
      retriable: false,
      source: 'dead-letter',
      final: true,
    };
  }
  if (failed) {
    return {
      code: failed.payload.code,
      message: failed.payload.message,
      at: failed.occurredAt,
      attempt: failed.payload.attempt,
      retriable: failed.payload.retriable,
      source: 'job.failed',
      final: !failed.payload.willRetry || view?.status === 'failed',
    };
  }
  if (view?.error) {
    return { code: view.error.code, message: view.error.message, source: 'view', final: view.status === 'failed' };
  }
  const letter = deadLetters[0];
  if (letter) {
    return {
      code: 'dead_lettered',
      message: letter.reason,
      at: letter.at,
      attempt: letter.deliveries,
      source: 'dead-letter',
      final: !letter.notRedrivable,
    };
  }
  return undefined;
}

function durations(steps: JobStep[], view: JobView | undefined): JobReport['durations'] {
  const time = (type: string, last = false) => {
    const list = steps.filter((s) => s.type === type);
    const step = last ? list[list.length - 1] : list[0];
    return step ? Date.parse(step.at) : undefined;
  };
  const requested = time('job.requested') ?? (view?.createdAt ? Date.parse(view.createdAt) : undefined);
  const started = time('job.started', true);
  const ended =
    time('job.completed') ?? time('job.cancelled') ?? (view?.finishedAt ? Date.parse(view.finishedAt) : undefined);
  const completed = steps.find((s) => s.envelope.type === 'job.completed')?.envelope;
  return {
    queueWaitMs:
      completed?.type === 'job.completed'
        ? completed.payload.timings.queuedMs
        : requested !== undefined && started !== undefined
          ? started - requested
          : undefined,
    runMs:
      completed?.type === 'job.completed'
        ? completed.payload.timings.runMs
        : started !== undefined && ended !== undefined
          ? ended - started
          : undefined,
    totalMs: requested !== undefined && ended !== undefined ? ended - requested : undefined,
  };
}

function progressOf(tick: JobEnvelope<'job.progress'> | undefined): JobReport['lastProgress'] {
  return tick && { value: tick.payload.value, max: tick.payload.max, at: tick.occurredAt };
}

function safeJson(line: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
