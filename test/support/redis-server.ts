import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './free-port';
import { pollUntil } from './poll-until';

/**
 * A private redis-server on a free port (AOF on, fsync always), for restart and durability tests. With `cluster`,
 * a one-node Redis Cluster holding every slot: a plain client works against it, and Redis applies the cluster's
 * rules (no command or script across hash slots).
 */
export class TestRedisServer {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'cr-redis-'));
  port = 0;

  constructor(private readonly options: { cluster?: boolean } = {}) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes'].concat([
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        ...(this.options.cluster
          ? ['--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, 'nodes.conf')]
          : []),
      ]),
      { stdio: 'ignore' },
    );
    await this.waitUntilUp();
    if (this.options.cluster) await this.takeAllSlots();
    return this;
  }

  /** Assigns every slot to this node (kept in nodes.conf across a restart) and waits for `cluster_state:ok`. */
  private async takeAllSlots(): Promise<void> {
    const admin = new Redis(this.url, { maxRetriesPerRequest: 0 });
    try {
      const info = async () => String(await admin.call('CLUSTER', 'INFO'));
      if (!(await info()).includes('cluster_slots_assigned:16384')) {
        await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      }
      await pollUntil(info, (text) => text.includes('cluster_state:ok'), {
        timeoutMs: 10_000,
        intervalMs: 50,
        description: `cluster state ok on ${this.port}`,
      });
    } finally {
      admin.disconnect();
    }
  }

  private async waitUntilUp(): Promise<void> {
    await pollUntil(
      async () => {
        const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      (up) => up,
      { timeoutMs: 10_000, intervalMs: 50, description: `redis-server on ${this.port}` },
    );
  }

  /** SIGKILL: no shutdown save; AOF with fsync always keeps every acknowledged write. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
