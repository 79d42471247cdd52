import { Inject, Injectable } from '@nestjs/common';
import { Gauge, type Registry } from 'prom-client';
import { withTimeout } from '../../common/with-timeout.util';
import { METRIC_PREFIX, METRICS_REGISTRY } from './metrics.registry';
import { QUEUE_TIERS, StreamStatsReader, type StreamsSnapshot } from '../operations';

const SCRAPE_TIMEOUT_MS = 1_500;

interface Refreshed {
  snapshot?: StreamsSnapshot;
  durationMs: number;
}

/**
 * Stream, group, queue and worker gauges, read from Redis at scrape time (one snapshot per scrape, bounded by a
 * timeout). They describe shared state, so every process reports the same values: aggregate them with max(),
 * never sum(). When Redis does not answer in time the gauges stay empty and `stream_stats_up` is 0, rather than
 * exporting stale numbers.
 */
@Injectable()
export class StreamMetricsCollector {
  private inflight?: Promise<Refreshed>;

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    private readonly reader: StreamStatsReader,
  ) {
    const refresh = (): Promise<Refreshed> => this.refresh();
    const define = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (gauge: Gauge<L>, refreshed: Refreshed & { snapshot: StreamsSnapshot }) => void,
    ): void => {
      new Gauge<L>({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          this.reset();
          const refreshed = await refresh();
          if (refreshed.snapshot) fill(this, { ...refreshed, snapshot: refreshed.snapshot });
        },
      });
    };

    define('stream_length', 'Entries in each job stream (XLEN).', ['stream'], (g, { snapshot }) => {
      for (const s of snapshot.streams) g.set({ stream: s.name }, s.length);
    });
    define(
      'stream_group_lag',
      'Entries not yet delivered to the group (XINFO GROUPS lag).',
      ['stream', 'group'],
      (g, r) => {
        for (const { stream, group } of groups(r.snapshot))
          if (group.lag !== null) g.set({ stream, group: group.group }, group.lag);
      },
    );
    define(
      'stream_group_pending',
      'Entries delivered to the group and not acknowledged.',
      ['stream', 'group'],
      (g, r) => {
        for (const { stream, group } of groups(r.snapshot)) g.set({ stream, group: group.group }, group.pending);
      },
    );
    define('stream_group_consumers', 'Consumers registered in the group.', ['stream', 'group'], (g, r) => {
      for (const { stream, group } of groups(r.snapshot)) g.set({ stream, group: group.group }, group.consumers);
    });
    define(
      'stream_oldest_pending_age_seconds',
      'Age (since append) of the oldest entry the group holds unacknowledged; 0 when none.',
      ['stream', 'group'],
      (g, r) => {
        for (const { stream, group } of groups(r.snapshot)) {
          g.set({ stream, group: group.group }, (group.oldestPending?.ageMs ?? 0) / 1000);
        }
      },
    );
    define('dlq_size', 'Entries in the dead-letter stream (jobs:dlq).', [], (g, r) => g.set(r.snapshot.dlqSize));
    define('queue_length', 'Jobs accepted and not yet taken by a worker (queue ticket set).', [], (g, r) =>
      g.set(r.snapshot.queueLength),
    );
    define(
      'queued_jobs',
      'Jobs accepted and not yet taken by a worker, by tier (normal, priority); they sum to queue_length.',
      ['tier'],
      (g, r) => {
        for (const tier of QUEUE_TIERS) g.set({ tier }, r.snapshot.queueTiers[tier].length);
      },
    );
    define(
      'queue_oldest_wait_seconds',
      'How long the oldest job still waiting in the queue has waited since its submit, by tier; 0 when none waits.',
      ['tier'],
      (g, r) => {
        for (const tier of QUEUE_TIERS) g.set({ tier }, (r.snapshot.queueTiers[tier].oldestWaitMs ?? 0) / 1000);
      },
    );
    define('draining', '1 while drain mode refuses new jobs.', [], (g, r) => g.set(r.snapshot.draining ? 1 : 0));
    define('gpu_workers', 'GPU worker processes advertising in gpu:workers, live or expired.', ['state'], (g, r) => {
      const live = r.snapshot.gpuWorkers.filter((w) => w.live).length;
      g.set({ state: 'live' }, live);
      g.set({ state: 'stale' }, r.snapshot.gpuWorkers.length - live);
    });
    define('gpu_slots', 'Parallel job slots advertised by live GPU workers.', [], (g, r) =>
      g.set(r.snapshot.gpuWorkers.filter((w) => w.live).reduce((n, w) => n + w.slots, 0)),
    );
    new Gauge({
      name: `${METRIC_PREFIX}stream_stats_up`,
      help: '1 when the scrape-time Redis read succeeded within its timeout.',
      registers: [registry],
      async collect() {
        this.set((await refresh()).snapshot ? 1 : 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}stream_stats_duration_seconds`,
      help: 'Time the scrape-time Redis read took.',
      registers: [registry],
      async collect() {
        this.set((await refresh()).durationMs / 1000);
      },
    });
  }

  /**
   * One Redis read per scrape: prom-client starts every metric's collect() in the same tick, so they all join the
   * in-flight read; it is dropped once settled and the next scrape reads afresh.
   */
  private refresh(): Promise<Refreshed> {
    if (this.inflight) return this.inflight;
    const started = Date.now();
    this.inflight = withTimeout(this.reader.snapshot(), SCRAPE_TIMEOUT_MS)
      .then(
        (snapshot): Refreshed => ({ snapshot, durationMs: Date.now() - started }),
        (): Refreshed => ({ durationMs: Date.now() - started }),
      )
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}

function groups(snapshot: StreamsSnapshot) {
  return snapshot.streams.flatMap((s) => s.groups.map((group) => ({ stream: s.name, group })));
}
