import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** Every metric this service defines starts with this; process/nodejs defaults keep their standard names. */
export const METRIC_PREFIX = 'comfy_relay_';

/**
 * One registry per app instance rather than prom-client's global one: tests start several apps in one process,
 * and a global registry would refuse the second set of metrics. The `role` label tells a gpu worker's RSS from
 * the api's on one dashboard.
 */
export function createMetricsRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry });
  return registry;
}
