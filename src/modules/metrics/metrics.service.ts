/**
 * Metric hooks for the other modules. MetricsModule is global: inject `MetricsService` anywhere.
 *
 * GPU module (ComfyUI pool and runner). `comfyui` is the instance name the runner also puts in job events
 * (`job.accepted.instance`), so dashboards can line the two up:
 *   metrics.comfyuiUp(instance, true | false)      after every health probe (quarantined → false, re-admitted → true)
 *   metrics.comfyuiRunning(instance, jobs)         whenever the number of prompts executing on it changes (0 = idle);
 *                                                  busy/idle, busy seconds and the busy ratio derive from it
 * Bot module (every Bot API call, from the replica that made it):
 *   metrics.telegramCall(method, outcome)          outcome: 'ok' | 'not_modified' (400 "message is not modified",
 *                                                  a success for us) | 'rate_limited' (429) | 'blocked' (403) |
 *                                                  'unauthorized' (401) | 'bad_request' (other 4xx) |
 *                                                  'error' (network, timeout, 5xx)
 *   metrics.telegramCall('sendPhoto', 'rate_limited', { retryAfterSeconds: 7 })   also records retry_after
 * Bootstrap (once, after creating the transport):
 *   metrics.watchConsumers(() => streams.stats())  exports per-consumer processed/failed/claimed/dead-lettered
 *
 * Unit tests of those modules can pass `new MetricsService(new Registry())` (from prom-client).
 */
import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ConsumerStats } from '../../streams/stream-consumer';
import { BusyWindowTracker } from './busy-window.tracker';
import { LabelGuard } from './label-guard';
import { METRIC_PREFIX, METRICS_REGISTRY } from './metrics.registry';

export type TelegramOutcome =
  'ok' | 'not_modified' | 'rate_limited' | 'blocked' | 'unauthorized' | 'bad_request' | 'error';

const BUSY_WINDOW_MS = 60_000;

@Injectable()
export class MetricsService {
  private readonly comfyuiLabel = new LabelGuard(200);
  private readonly methodLabel = new LabelGuard(50);
  private readonly up: Gauge<'comfyui'>;
  private readonly running: Gauge<'comfyui'>;
  private readonly busy = new Map<string, BusyWindowTracker>();
  private readonly telegramCalls: Counter<'method' | 'outcome'>;
  private readonly telegramRateLimited: Counter<'method'>;
  private readonly telegramRetryAfter: Histogram;
  private consumerSources: (() => readonly ConsumerStats[])[] = [];

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;
    const busy = this.busy;
    this.up = new Gauge({
      name: name('comfyui_up'),
      help: 'ComfyUI instance healthy (1) or quarantined (0), as seen by this gpu process.',
      labelNames: ['comfyui'],
      registers: [registry],
    });
    this.running = new Gauge({
      name: name('comfyui_running_jobs'),
      help: 'Prompts this gpu process has executing on the instance.',
      labelNames: ['comfyui'],
      registers: [registry],
    });
    new Gauge({
      name: name('comfyui_busy'),
      help: '1 while the instance executes at least one prompt of this process.',
      labelNames: ['comfyui'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [comfyui, tracker] of busy) this.set({ comfyui }, tracker.busy ? 1 : 0);
      },
    });
    new Gauge({
      name: name('gpu_busy_ratio'),
      help: `Fraction of the last ${BUSY_WINDOW_MS / 1000} s the instance was executing a prompt.`,
      labelNames: ['comfyui'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const [comfyui, tracker] of busy) this.set({ comfyui }, tracker.ratio(now));
      },
    });
    new Counter({
      name: name('comfyui_busy_seconds_total'),
      help: 'Seconds the instance spent executing prompts; rate() of it is the busy ratio.',
      labelNames: ['comfyui'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const [comfyui, tracker] of busy) this.inc({ comfyui }, tracker.busySecondsTotal(now));
      },
    });
    this.telegramCalls = new Counter({
      name: name('telegram_requests_total'),
      help: 'Bot API calls by method and outcome (ok, not_modified, rate_limited, blocked, unauthorized, bad_request, error).',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    });
    this.telegramRateLimited = new Counter({
      name: name('telegram_rate_limited_total'),
      help: 'Bot API calls answered 429 Too Many Requests.',
      labelNames: ['method'],
      registers: [registry],
    });
    this.telegramRetryAfter = new Histogram({
      name: name('telegram_retry_after_seconds'),
      help: 'retry_after of 429 answers.',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    });
    this.defineConsumerMetrics(registry);
  }

  comfyuiUp(instance: string, up: boolean): void {
    this.up.set({ comfyui: this.comfyuiLabel.value(instance) }, up ? 1 : 0);
  }

  comfyuiRunning(instance: string, jobs: number, now = Date.now()): void {
    const comfyui = this.comfyuiLabel.value(instance);
    const count = Math.max(0, Math.floor(jobs));
    this.running.set({ comfyui }, count);
    let tracker = this.busy.get(comfyui);
    if (!tracker) {
      tracker = new BusyWindowTracker(BUSY_WINDOW_MS, now);
      this.busy.set(comfyui, tracker);
    }
    tracker.set(count > 0, now);
  }

  telegramCall(method: string, outcome: TelegramOutcome, extra: { retryAfterSeconds?: number } = {}): void {
    const label = this.methodLabel.value(method);
    this.telegramCalls.inc({ method: label, outcome });
    if (outcome !== 'rate_limited') return;
    this.telegramRateLimited.inc({ method: label });
    if (extra.retryAfterSeconds !== undefined) this.telegramRetryAfter.observe(Math.max(0, extra.retryAfterSeconds));
  }

  /** Exports the transport's per-consumer counters (RedisStreamsServer.stats()) at every scrape. */
  watchConsumers(source: () => readonly ConsumerStats[]): void {
    this.consumerSources = [...this.consumerSources, source];
  }

  private consumerStats(): ConsumerStats[] {
    return this.consumerSources.flatMap((source) => {
      try {
        return [...source()];
      } catch {
        return [];
      }
    });
  }

  private defineConsumerMetrics(registry: Registry): void {
    const stats = () => this.consumerStats();
    const counters: [string, string, (s: ConsumerStats) => number][] = [
      ['consumer_processed_total', 'Entries this consumer handled and acknowledged.', (s) => s.processed],
      ['consumer_handler_failures_total', 'Handler errors (each leads to a retry or a dead letter).', (s) => s.failed],
      ['consumer_dead_lettered_total', 'Entries this consumer moved to the DLQ.', (s) => s.deadLettered],
      [
        'consumer_claimed_total',
        'Idle entries of other (dead) consumers this one claimed (XAUTOCLAIM).',
        (s) => s.claimed,
      ],
      ['consumer_read_errors_total', 'Failed XREADGROUP calls (Redis down, group lost).', (s) => s.readErrors],
      [
        'consumer_handed_off_total',
        'Entries this consumer passed to a peer that can do their work (a gpu process without a capable instance).',
        (s) => s.handedOff,
      ],
    ];
    for (const [suffix, help, pick] of counters) {
      new Counter({
        name: `${METRIC_PREFIX}${suffix}`,
        help,
        labelNames: ['group', 'consumer'],
        registers: [registry],
        collect() {
          this.reset();
          for (const s of stats()) this.inc({ group: s.group, consumer: s.consumer }, pick(s));
        },
      });
    }
    const gauges: [string, string, (s: ConsumerStats, now: number) => number][] = [
      ['consumer_in_flight', 'Entries this consumer is handling now.', (s) => s.inFlight],
      ['consumer_backlog', 'Entries read and waiting for a free handler slot.', (s) => s.backlog],
      [
        'consumer_last_read_age_seconds',
        'Seconds since the consumer last returned from XREADGROUP (stays below the block time while healthy).',
        (s, now) => (s.lastReadAt > 0 ? (now - s.lastReadAt) / 1000 : 0),
      ],
    ];
    for (const [suffix, help, pick] of gauges) {
      new Gauge({
        name: `${METRIC_PREFIX}${suffix}`,
        help,
        labelNames: ['group', 'consumer'],
        registers: [registry],
        collect() {
          this.reset();
          const now = Date.now();
          for (const s of stats()) this.set({ group: s.group, consumer: s.consumer }, pick(s, now));
        },
      });
    }
  }
}
