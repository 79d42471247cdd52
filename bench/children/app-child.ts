/**
 * One comfy-relay process for the roles in ROLE (what `src/main.ts` starts), driven by the bench over stdio:
 * prints `READY <url>` once listening, answers `mem` with `MEM <json>`, and on `exit` closes the app gracefully and
 * exits 0 (so `--cpu-prof` gets written). The bench kills it with SIGKILL when it must die hard (takeover).
 */
import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { startApp } from '../../src/bootstrap';
import { silentLogger } from '../../src/common/logger';
import { startObservability } from '../../src/common/observability/observability.starter';
import { loadConfig } from '../../src/config/config.loader';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  // As main.ts does: tracing/Sentry only when their variables are set (the bench's tracing rows set them).
  const observability = await startObservability(config, silentLogger);
  const running = await startApp(config, { host: '127.0.0.1' });
  process.stdout.write(`READY ${running.url}\n`);
  let closing = false;
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'mem') process.stdout.write(`MEM ${JSON.stringify(process.memoryUsage())}\n`);
    if (line === 'exit' && !closing) {
      closing = true;
      setTimeout(() => process.exit(0), 8_000).unref();
      void running
        .close()
        .then(() => observability.shutdown())
        .finally(() => process.exit(0));
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`app-child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
