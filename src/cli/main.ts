import 'reflect-metadata';
import { runCli } from './run-cli';

/** `npm run cli -- <command>` (or `node dist/cli/main <command>`): exits with runCli's code. */
const interrupt = new AbortController();
process.once('SIGINT', () => {
  // First Ctrl-C stops a `tail` cleanly; a second one ends the process at once.
  interrupt.abort();
  process.once('SIGINT', () => process.exit(130));
});

runCli(process.argv.slice(2), { signal: interrupt.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cli failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
