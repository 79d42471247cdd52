import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TEST_REDIS_URL } from '../../support/test-redis';

const MAIN = join(__dirname, '../../../src/main.ts');

export interface ChildApp {
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM (graceful), then SIGKILL if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The real entry point (src/main.ts) in its own process: for kill -9, for start-up as an operator sees it, and
 * for timing measurements that the test process's own work must not disturb.
 */
export function spawnApp(env: Record<string, string>, { preload = [] }: { preload?: string[] } = {}): ChildApp {
  let output = '';
  const modules = preload.flatMap((path) => ['-r', path]);
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', ...modules, MAIN], {
    env: {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      PORT: '0',
      LOG_LEVEL: 'warn',
      CLAIM_IDLE_MS: '1000',
      SHUTDOWN_GRACE_MS: '2000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => output,
    exited,
    async stop(graceMs = 10_000) {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => running() && child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
