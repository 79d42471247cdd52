import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AnyJobEnvelope } from '../../streams/job-event.types';
import { LabelGuard } from './label-guard';
import { METRIC_PREFIX } from './metrics.registry';

const QUEUE_WAIT_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];
const RUN_TIME_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600];
/** Recently seen jobs kept for workflow lookup and terminal de-duplication (a bounded insertion-ordered map). */
const MEMORY = 50_000;

/** Finds a job's workflow when its request was appended before this process started tailing. */
export type WorkflowLookup = (jobId: string) => Promise<string | undefined>;

/**
 * Job counters and timing histograms, folded from the job events. Counts every job once: terminal outcomes are
 * de-duplicated by job id (a redelivered handler can append a second `job.completed`), and a `job.failed` that
 * will be retried counts as a retry, not a failure. Labels come from outside, so their values are capped.
 */
export class JobEventMetrics {
  private readonly submitted: Counter<'workflow' | 'source'>;
  private readonly completed: Counter<'workflow'>;
  private readonly failed: Counter<'workflow' | 'reason'>;
  private readonly cancelled: Counter<'workflow' | 'reason'>;
  private readonly retried: Counter<'workflow' | 'reason'>;
  private readonly redelivered: Counter<'workflow'>;
  private readonly deadLettered: Counter<'group'>;
  private readonly delivered: Counter<'workflow'>;
  private readonly queueWait: Histogram<'workflow'>;
  private readonly queueWaitByTier: Histogram<'tier'>;
  private readonly runTime: Histogram<'workflow'>;
  private readonly workflows = new Map<string, string>();
  /** Tier of the jobs whose request this process saw (the request says it; later events do not). */
  private readonly tiers = new Map<string, 'normal' | 'priority'>();
  private readonly finished = new Map<string, true>();
  private readonly running = new Map<string, { comfyui: string; since: number }>();
  private readonly workflowLabel = new LabelGuard(100);
  private readonly reasonLabel = new LabelGuard(100);
  private readonly sourceLabel = new LabelGuard(10);
  private readonly instanceLabel = new LabelGuard(200);

  constructor(
    registry: Registry,
    private readonly lookup: WorkflowLookup,
    /** A job with no end event after this long stops counting as running (its worker died and the event is lost). */
    private readonly runningForgetMs: number,
  ) {
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers: [registry] });
    this.submitted = counter('jobs_submitted_total', 'Jobs requested (job.requested), by workflow and source.', [
      'workflow',
      'source',
    ]);
    this.completed = counter('jobs_completed_total', 'Jobs that succeeded (job.completed).', ['workflow']);
    this.failed = counter('jobs_failed_total', 'Jobs that failed for good, by error code or dead_lettered.', [
      'workflow',
      'reason',
    ]);
    this.cancelled = counter('jobs_cancelled_total', 'Jobs cancelled, reason queued or running.', [
      'workflow',
      'reason',
    ]);
    this.retried = counter('job_retries_total', 'Failed attempts that will be retried, by error code.', [
      'workflow',
      'reason',
    ]);
    this.redelivered = counter('job_redeliveries_total', 'Requests taken again after a failed or lost attempt.', [
      'workflow',
    ]);
    this.deadLettered = counter('jobs_dead_lettered_total', 'Entries moved to the DLQ, by the group that gave up.', [
      'group',
    ]);
    this.delivered = counter('jobs_delivered_total', 'Results delivered to Telegram chats (job.delivered).', [
      'workflow',
    ]);
    this.queueWait = new Histogram({
      name: `${METRIC_PREFIX}job_queue_wait_seconds`,
      help: 'Time from request to the start of the successful run (job.completed timings.queuedMs).',
      labelNames: ['workflow'],
      buckets: QUEUE_WAIT_BUCKETS,
      registers: [registry],
    });
    this.queueWaitByTier = new Histogram({
      name: `${METRIC_PREFIX}job_queue_wait_by_tier_seconds`,
      help:
        'Time from request to the start of the successful run, by tier (normal, priority): jobs whose request ' +
        'this process saw.',
      labelNames: ['tier'],
      buckets: QUEUE_WAIT_BUCKETS,
      registers: [registry],
    });
    this.runTime = new Histogram({
      name: `${METRIC_PREFIX}job_run_seconds`,
      help: 'Run time of successful jobs on their instance (job.completed timings.runMs).',
      labelNames: ['workflow'],
      buckets: RUN_TIME_BUCKETS,
      registers: [registry],
    });
    const running = this.running;
    const forget = (now: number) => this.forgetStale(now);
    new Gauge({
      name: `${METRIC_PREFIX}jobs_running`,
      help: 'Jobs between job.started and their end, per ComfyUI instance (derived from events).',
      labelNames: ['comfyui'],
      registers: [registry],
      collect() {
        this.reset();
        forget(Date.now());
        const counts = new Map<string, number>();
        for (const { comfyui } of running.values()) counts.set(comfyui, (counts.get(comfyui) ?? 0) + 1);
        for (const [comfyui, n] of counts) this.set({ comfyui }, n);
      },
    });
  }

  async observe(event: AnyJobEnvelope, now = Date.now()): Promise<void> {
    switch (event.type) {
      case 'job.requested':
        remember(this.workflows, event.jobId, event.payload.workflow);
        remember(this.tiers, event.jobId, event.payload.priority === true ? 'priority' : 'normal');
        this.submitted.inc({
          workflow: this.workflowLabel.value(event.payload.workflow),
          source: this.sourceLabel.value(event.payload.source),
        });
        return;
      case 'job.accepted':
        if (event.payload.attempt > 1) this.redelivered.inc({ workflow: await this.workflowOf(event.jobId) });
        return;
      case 'job.started':
        remember(this.running, event.jobId, { comfyui: this.instanceLabel.value(event.payload.instance), since: now });
        return;
      case 'job.completed': {
        this.running.delete(event.jobId);
        if (!this.finish(event.jobId)) return;
        const workflow = await this.workflowOf(event.jobId);
        this.completed.inc({ workflow });
        this.queueWait.observe({ workflow }, Math.max(0, event.payload.timings.queuedMs) / 1000);
        const tier = this.tiers.get(event.jobId);
        if (tier) this.queueWaitByTier.observe({ tier }, Math.max(0, event.payload.timings.queuedMs) / 1000);
        this.runTime.observe({ workflow }, Math.max(0, event.payload.timings.runMs) / 1000);
        return;
      }
      case 'job.failed': {
        this.running.delete(event.jobId);
        const workflow = await this.workflowOf(event.jobId);
        const reason = this.reasonLabel.value(event.payload.code);
        if (event.payload.willRetry) this.retried.inc({ workflow, reason });
        else if (this.finish(event.jobId)) this.failed.inc({ workflow, reason });
        return;
      }
      case 'job.cancelled':
        this.running.delete(event.jobId);
        if (!this.finish(event.jobId)) return;
        this.cancelled.inc({
          workflow: await this.workflowOf(event.jobId),
          reason: event.payload.whileQueued ? 'queued' : 'running',
        });
        return;
      case 'job.dead-lettered':
        this.deadLettered.inc({ group: this.reasonLabel.value(event.payload.group) });
        if (!event.payload.endsJob) return;
        this.running.delete(event.jobId);
        if (this.finish(event.jobId)) {
          this.failed.inc({ workflow: await this.workflowOf(event.jobId), reason: 'dead_lettered' });
        }
        return;
      case 'job.delivered':
        this.delivered.inc({ workflow: await this.workflowOf(event.jobId) });
        return;
      case 'job.progress':
      case 'job.cancel-requested':
        return;
    }
  }

  /** True the first time a job ends. */
  private finish(jobId: string): boolean {
    if (this.finished.has(jobId)) return false;
    remember(this.finished, jobId, true);
    return true;
  }

  private async workflowOf(jobId: string): Promise<string> {
    const known = this.workflows.get(jobId) ?? (await this.lookup(jobId).catch(() => undefined));
    if (known) remember(this.workflows, jobId, known);
    return this.workflowLabel.value(known);
  }

  private forgetStale(now: number): void {
    for (const [jobId, { since }] of this.running) if (now - since > this.runningForgetMs) this.running.delete(jobId);
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MEMORY) map.delete(map.keys().next().value!);
}
