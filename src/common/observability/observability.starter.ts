import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppConfig } from '../../config/app-config';
import { createLogScrubber } from '../log-redaction';
import type { Logger } from '../logger';
import { secretValuesOf } from '../secret-values';
import { installErrorReporting, installTracing, reportError } from './observability.hooks';

export interface RunningObservability {
  /** Flushes spans and error events (bounded), then uninstalls the hooks. */
  shutdown(): Promise<void>;
}

const SHUTDOWN_TIMEOUT_MS = 5_000;

/**
 * Starts what the environment asks for: OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT) and Sentry (SENTRY_DSN).
 * Each SDK is imported here, dynamically, only when configured: with both unset not one module of either is loaded,
 * so an unobserved process pays nothing in memory or start-up time.
 */
export async function startObservability(
  config: Pick<AppConfig, 'observability' | 'instanceName'> & Parameters<typeof secretValuesOf>[0],
  log: Logger,
): Promise<RunningObservability> {
  const { otel, sentry, role } = config.observability;
  const stops: (() => Promise<void>)[] = [];
  if (!otel && !sentry) return { shutdown: () => Promise.resolve() };
  const scrub = createLogScrubber(secretValuesOf(config));
  const release = version();
  if (otel) {
    const { startTracing } = await import('./otel-tracing');
    const started = await startTracing({
      endpoint: otel.endpoint,
      protocol: otel.protocol,
      serviceName: otel.serviceName,
      serviceVersion: release,
      role,
      instance: config.instanceName,
      scrub,
    });
    installTracing(started.tracing);
    stops.push(started.shutdown);
    log.info({ serviceName: otel.serviceName, protocol: otel.protocol, endpoint: scrub(otel.endpoint) }, 'tracing on');
  }
  if (sentry) {
    const { startSentry } = await import('./sentry-reporting');
    const started = startSentry({
      dsn: sentry.dsn,
      ...(sentry.environment ? { environment: sentry.environment } : {}),
      release: `comfy-relay@${release}`,
      sampleRate: sentry.sampleRate,
      tracesSampleRate: sentry.tracesSampleRate,
      otelOwnedElsewhere: otel !== undefined,
      role,
      instance: config.instanceName,
      scrub,
    });
    installErrorReporting(started.reporting);
    stops.push(started.shutdown);
    log.info({ sampleRate: sentry.sampleRate }, 'error reporting on (Sentry)');
  }
  return {
    shutdown: async () => {
      await Promise.allSettled(stops.map((stop) => withTimeout(stop(), SHUTDOWN_TIMEOUT_MS)));
      installTracing(undefined);
      installErrorReporting(undefined);
    },
  };
}

/** Reports a start-up failure and waits (bounded) for it to be sent; a no-op without Sentry. */
export async function reportFatal(err: unknown, observability: RunningObservability | undefined): Promise<void> {
  reportError(err, { phase: 'start' });
  await observability?.shutdown();
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function version(): string {
  try {
    // src/common/observability or dist/common/observability: the package root is three levels up.
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
