import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const run = promisify(execFile);

/**
 * Starts the whole service (every role) in a fresh Node process the way main.ts does, and reports which SDK packages
 * got loaded: with SENTRY_DSN and OTEL_EXPORTER_OTLP_ENDPOINT unset, not one module of either may be in memory (the
 * OpenTelemetry API package aside: prom-client has always required it).
 */
async function sdkModulesLoaded(env: Record<string, string>): Promise<{ otel: number; sentry: number }> {
  const script = `
    require('reflect-metadata');
    const { startApp } = require('./src/bootstrap');
    const { loadConfig } = require('./src/config/config.loader');
    const { startObservability } = require('./src/common/observability/observability.starter');
    const { silentLogger } = require('./src/common/logger');
    const config = loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' });
    (async () => {
      const observability = await startObservability(config, silentLogger);
      const app = await startApp(config, { host: '127.0.0.1' });
      const loaded = (pkg) => Object.keys(require.cache).filter((f) => f.includes('/node_modules/' + pkg + '/')).length;
      // @opentelemetry/api is not the SDK: prom-client requires it (for exemplars) in every process, as before.
      const api = loaded('@opentelemetry/api');
      const report = { otel: loaded('@opentelemetry') - api, sentry: loaded('@sentry') };
      await app.close();
      await observability.shutdown();
      process.stdout.write('LOADED=' + JSON.stringify(report) + '\\n');
      process.exit(0);
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const { stdout } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    cwd: join(__dirname, '..', '..'),
    env: {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      STREAM_PREFIX: uniquePrefix('lazy-sdk'),
      ROLE: 'api,gpu,projector',
      COMFYUI_URLS: 'http://127.0.0.1:9',
      SENTRY_DSN: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      ...env,
    },
    timeout: 60_000,
  });
  const match = /LOADED=(\{.*\})/.exec(stdout);
  if (!match) throw new Error(`no report from the child: ${stdout}`);
  return JSON.parse(match[1]!) as { otel: number; sentry: number };
}

describe('the observability SDKs are loaded only when configured', () => {
  it('SENTRY_DSN and OTEL_EXPORTER_OTLP_ENDPOINT unset: no OpenTelemetry or Sentry module in the process', async () => {
    expect(await sdkModulesLoaded({})).toEqual({ otel: 0, sentry: 0 });
  }, 60_000);

  it('OTEL_EXPORTER_OTLP_ENDPOINT set: the OpenTelemetry SDK is loaded, Sentry is not', async () => {
    // Port 9 (discard) on 127.0.0.1: nothing listens; spans would just fail to export.
    const loaded = await sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    expect(loaded.otel).toBeGreaterThan(10);
    expect(loaded.sentry).toBe(0);
  }, 60_000);
});
