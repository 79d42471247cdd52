import 'reflect-metadata';
import { startApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/config.loader';
import { createRootLogger } from './common/root-logger';
import {
  reportFatal,
  startObservability,
  type RunningObservability,
} from './common/observability/observability.starter';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG: a supervisor should not restart-loop on a bad environment
    }
    throw err;
  }
  const logger = createRootLogger(config, [...config.roles].join(','));
  // Before the app: Sentry and tracing (when configured) see start-up failures and every job event.
  observability = await startObservability(config, logger);
  const running = await startApp(config, { logger });
  const stopObservability = observability.shutdown;
  // Spans and error events still queued are sent before the process exits.
  const close = async () => {
    await running.close();
    await stopObservability();
  };
  exitOnSignals(close, config.shutdownGraceMs, running.logger);
}

let observability: RunningObservability | undefined;

/**
 * SIGTERM/SIGINT: drain (stream consumers finish or hand back their work, connections close), then exit 0.
 * A second signal, or a drain that outlives the grace period by 10 s, exits 1 at once.
 */
function exitOnSignals(close: () => Promise<void>, graceMs: number, log: { info(o: object, m: string): void }): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal, graceMs }, 'shutting down: draining in-flight work');
    setTimeout(() => process.exit(1), graceMs + 10_000).unref();
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`comfy-relay failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  await reportFatal(err, observability).catch(() => undefined);
  process.exit(1);
});
