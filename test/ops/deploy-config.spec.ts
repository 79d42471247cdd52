import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { JobEventMetrics } from '../../src/modules/metrics/job-event.metrics';
import { createMetricsRegistry } from '../../src/modules/metrics/metrics.registry';
import { MetricsService } from '../../src/modules/metrics/metrics.service';
import { StreamMetricsCollector } from '../../src/modules/metrics/stream-metrics.collector';
import type { StreamStatsReader } from '../../src/modules/operations';

const ROOT = join(__dirname, '..', '..');

/** Every metric name the service exports (all roles), with the series suffixes Prometheus derives. */
function exportedNames(): Set<string> {
  const registry: Registry = createMetricsRegistry('all');
  new MetricsService(registry);
  new JobEventMetrics(registry, async () => undefined, 1000);
  new StreamMetricsCollector(registry, {} as StreamStatsReader);
  const names = new Set<string>();
  for (const metric of registry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Metric names referenced by a PromQL expression (ours and the process/node defaults). */
function referenced(expr: string): string[] {
  return [...expr.matchAll(/\b((?:comfy_relay|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

describe('deploy/: dashboard and alerts only use metrics the service exports', () => {
  const exported = exportedNames();

  it('Grafana dashboard', () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/comfy-relay.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) =>
      (p.targets ?? []).map((t) => t.expr),
    );
    expect(exprs.length).toBeGreaterThan(15);
    const unknown = exprs.flatMap(referenced).filter((n) => !exported.has(n));
    expect(unknown).toEqual([]);
    expect(dashboard.uid).toBe('comfy-relay');
  });

  it('Prometheus alert rules cover queue wait, lag, DLQ growth, instances down, worker memory', () => {
    const rules = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')).groups.flatMap(
      (g: { rules: { alert: string; expr: string }[] }) => g.rules,
    );
    const unknown = rules.flatMap((r: { expr: string }) => referenced(r.expr)).filter((n: string) => !exported.has(n));
    expect(unknown).toEqual([]);
    const byName = new Map<string, string>(rules.map((r: { alert: string; expr: string }) => [r.alert, r.expr]));
    expect(byName.get('QueueWaitP95High')).toContain('histogram_quantile(0.95');
    expect(byName.get('QueueWaitP95High')).toContain('comfy_relay_job_queue_wait_seconds_bucket');
    expect(byName.get('GpuGroupLagHigh')).toContain('comfy_relay_stream_group_lag');
    expect(byName.get('DeadLettersGrowing')).toContain('comfy_relay_dlq_size');
    expect(byName.get('ComfyUIInstanceDown')).toContain('comfy_relay_comfyui_up');
    expect(byName.get('WorkerMemoryHigh')).toContain('process_resident_memory_bytes');
  });

  it('never uses `instance` as a metric label (Prometheus owns it for the scrape target)', () => {
    const registry = createMetricsRegistry('all');
    new MetricsService(registry);
    new JobEventMetrics(registry, async () => undefined, 1000);
    new StreamMetricsCollector(registry, {} as StreamStatsReader);
    for (const metric of registry.getMetricsAsArray()) {
      expect((metric as unknown as { labelNames: string[] }).labelNames).not.toContain('instance');
    }
  });
});
