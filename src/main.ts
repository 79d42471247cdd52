import 'reflect-metadata';
import { startApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/config.loader';

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
  await startApp(config);
}

main().catch((err: unknown) => {
  process.stderr.write(`comfy-relay failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
