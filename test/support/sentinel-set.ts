import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './free-port';
import { pollUntil } from './poll-until';
import { askRedis, waitForRedis } from './redis-probe';

const HOST = '127.0.0.1';

interface Node {
  port: number;
  child: ChildProcess;
}

export interface SentinelSetOptions {
  /** The sentinels' `down-after-milliseconds` (default 1000; compose's default is 5000). */
  downAfterMs?: number;
}

/**
 * A Sentinel set on free ports of 127.0.0.1: one primary, two replicas, three sentinels (quorum 2) that declare a
 * primary down after 1 s (by default), so that a failover takes a few seconds and a replica is left to acknowledge
 * writes after it. Every process is killed by stop(), also after a failed test. The bench's failover measure
 * (bench/measures/failover.ts) uses it too.
 */
export class TestSentinelSet {
  readonly masterName = 'cr-test';
  readonly dir = mkdtempSync(join(tmpdir(), 'cr-sentinel-'));
  readonly downAfterMs: number;
  private primaryNode?: Node;
  private replicaNodes: Node[] = [];
  private sentinelNodes: Node[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor({ downAfterMs = 1_000 }: SentinelSetOptions = {}) {
    this.downAfterMs = downAfterMs;
  }

  /** REDIS_SENTINELS for the service. */
  get sentinels(): string {
    return this.sentinelNodes.map((s) => `${HOST}:${s.port}`).join(',');
  }

  get primaryPort(): number {
    return this.primaryNode!.port;
  }

  get replicaPorts(): number[] {
    return this.replicaNodes.map((r) => r.port);
  }

  async start(): Promise<this> {
    this.primaryNode = await this.startServer('primary', []);
    for (let i = 0; i < 2; i++) {
      this.replicaNodes.push(await this.startServer(`replica-${i}`, ['--replicaof', HOST, String(this.primaryPort)]));
    }
    await pollUntil(
      () => this.onlineReplicas(this.primaryPort),
      (n) => n === 2,
      { timeoutMs: 15_000, intervalMs: 50, description: 'both replicas in sync' },
    );
    for (let i = 0; i < 3; i++) this.sentinelNodes.push(await this.startSentinel(i));
    // A failover needs the sentinels to know each other (hello messages every 2 s) and the replicas.
    for (const sentinel of this.sentinelNodes) {
      await pollUntil(
        () => this.sentinelView(sentinel.port),
        (v) => v.sentinels === 2 && v.replicas === 2,
        { timeoutMs: 20_000, intervalMs: 100, description: `sentinel ${sentinel.port} sees its peers` },
      );
    }
    return this;
  }

  /** The primary the sentinels name now (host:port). */
  async currentPrimary(): Promise<string> {
    const reply = (await askRedis(this.sentinelNodes[0]!.port, [
      'SENTINEL',
      'get-master-addr-by-name',
      this.masterName,
    ])) as [string, string] | null;
    return reply ? `${reply[0]}:${reply[1]}` : 'unknown';
  }

  /** kill -9 of the primary the set started with. */
  async killPrimary(): Promise<void> {
    await this.kill(this.primaryNode!);
  }

  /** kill -9 of a node by port (e.g. the primary after a failover). */
  async killNode(port: number): Promise<void> {
    await this.kill(this.node(port));
  }

  /** Ports of the data nodes still running. */
  livePorts(): number[] {
    return [this.primaryNode!, ...this.replicaNodes]
      .filter((n) => n.child.exitCode === null && n.child.signalCode === null)
      .map((n) => n.port);
  }

  /** SIGSTOP / SIGCONT of every replica: stopped, they acknowledge nothing (WAIT times out). */
  pauseReplicas(paused: boolean): void {
    for (const replica of this.replicaNodes) this.pauseNode(replica.port, paused);
  }

  pauseNode(port: number, paused: boolean): void {
    this.node(port).child.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  private node(port: number): Node {
    const node = [this.primaryNode!, ...this.replicaNodes].find((n) => n.port === port);
    if (!node) throw new Error(`no data node on port ${port}`);
    return node;
  }

  /** A plain client of one node (the test's own reads). */
  client(port: number): Redis {
    return new Redis({ host: HOST, port, maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false });
  }

  async stop(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    }
    await Promise.all(
      [...this.children].map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? Promise.resolve()
          : new Promise((resolve) => child.once('exit', resolve)),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  async onlineReplicas(port: number): Promise<number> {
    const info = String(await askRedis(port, ['INFO', 'replication']).catch(() => ''));
    return info.split('\n').filter((line) => /^slave\d+:.*state=online/.test(line)).length;
  }

  private async sentinelView(port: number): Promise<{ sentinels: number; replicas: number }> {
    const [sentinels, replicas] = await Promise.all([
      askRedis(port, ['SENTINEL', 'sentinels', this.masterName]).catch(() => []),
      askRedis(port, ['SENTINEL', 'replicas', this.masterName]).catch(() => []),
    ]);
    return { sentinels: (sentinels as unknown[]).length, replicas: (replicas as unknown[]).length };
  }

  private async startServer(name: string, extra: string[]): Promise<Node> {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir];
    args.push('--dbfilename', `${name}.rdb`, '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0');
    const node = { port, child: this.spawn(args.concat(extra)) };
    await waitForRedis(port);
    return node;
  }

  private async startSentinel(index: number): Promise<Node> {
    const port = await freePort();
    const file = join(this.dir, `sentinel-${index}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${this.dir}`,
        `sentinel monitor ${this.masterName} ${HOST} ${this.primaryPort} 2`,
        `sentinel down-after-milliseconds ${this.masterName} ${this.downAfterMs}`,
        `sentinel failover-timeout ${this.masterName} 5000`,
        `sentinel parallel-syncs ${this.masterName} 2`,
        '',
      ].join('\n'),
    );
    const node = { port, child: this.spawn([file, '--sentinel']) };
    await waitForRedis(port);
    return node;
  }

  private spawn(args: string[]): ChildProcess {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.children.add(child);
    return child;
  }

  private async kill(node: Node): Promise<void> {
    const { child } = node;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
