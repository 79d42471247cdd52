import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Redis from 'ioredis';
import { sleep } from './deadline';

/**
 * The run's own redis-server on 127.0.0.1:<free port> with AOF and `appendfsync always`: a SIGKILL restart keeps
 * every write Redis acknowledged, so anything missing afterwards is the service's fault, not the fsync policy's.
 * (docker-compose.yml runs `everysec`, which may lose up to a second of writes on a crash; see docs/reliability.md.)
 */
export class RedisProcess {
  private child?: ChildProcess;
  port = 0;
  restarts = 0;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--logfile',
        join(this.dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    child.on('error', () => undefined);
    this.child = child;
    await this.waitUntilUp(15_000);
  }

  private async waitUntilUp(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`redis-server on ${this.port} exited with ${this.child.exitCode} (is redis-server installed?)`);
      }
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        // LOADING while the AOF is replayed: not up yet.
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // not yet
      } finally {
        probe.disconnect();
      }
      if (Date.now() > until) throw new Error(`redis-server on ${this.port} did not answer within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** SIGKILL: no shutdown hook, no final fsync — the AOF on disk is all that survives. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }

  async restart(downMs: number): Promise<void> {
    await this.kill();
    await sleep(downMs);
    await this.start();
    this.restarts++;
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
