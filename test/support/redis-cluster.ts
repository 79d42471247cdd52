import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis, { Cluster } from 'ioredis';
import { freePort } from './free-port';
import { pollUntil } from './poll-until';
import { askRedis, waitForRedis } from './redis-probe';

const HOST = '127.0.0.1';
const run = promisify(execFile);

interface Node {
  port: number;
  child: ChildProcess;
}

/**
 * A Redis Cluster of `primaries` nodes, each with `replicasPerPrimary` replicas (none by default), on free ports of
 * 127.0.0.1, made the way an operator would: `redis-server --cluster-enabled yes` per node, then
 * `redis-cli --cluster create … --cluster-replicas N --cluster-yes`, which spreads the 16384 slots evenly over the
 * primaries. stop() kills every process, also after a failed test.
 */
export class TestRedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'cr-cluster-'));
  private readonly nodes: Node[] = [];
  /** A process that ends without stop() (a crashed test run, a script's process.exit) takes its servers along. */
  private readonly killOnExit = (): void => {
    for (const { child } of this.nodes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };

  private primaryPorts: number[] = [];

  constructor(
    private readonly primaries = 3,
    private readonly replicasPerPrimary = 0,
  ) {}

  /** REDIS_CLUSTER_NODES for the service. */
  get nodeList(): string {
    return this.nodes.map((n) => `${HOST}:${n.port}`).join(',');
  }

  /** The primaries' ports. */
  get ports(): number[] {
    return this.primaryPorts;
  }

  async start(): Promise<this> {
    process.once('exit', this.killOnExit);
    const total = this.primaries * (1 + this.replicasPerPrimary);
    for (let i = 0; i < total; i++) await this.startNode(i);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...this.nodes.map((n) => `${HOST}:${n.port}`),
      '--cluster-replicas',
      String(this.replicasPerPrimary),
      '--cluster-yes',
    ]);
    // Every node must agree before a client's first CLUSTER SLOTS: a node still learning its peers answers a partial map.
    for (const node of this.nodes) {
      await pollUntil(
        () => askRedis(node.port, ['CLUSTER', 'INFO']).then(String),
        (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${total}`),
        { timeoutMs: 20_000, intervalMs: 50, description: `cluster state ok on ${node.port}` },
      );
    }
    // Every node's slot map names each range's replicas (clients and tests read it there).
    for (const node of this.nodes) {
      await pollUntil(
        () => askRedis(node.port, ['CLUSTER', 'SLOTS']) as Promise<unknown[][]>,
        (ranges) => ranges.length > 0 && ranges.every((r) => r.length === 3 + this.replicasPerPrimary),
        { timeoutMs: 20_000, intervalMs: 50, description: `replicas in the slot map of ${node.port}` },
      );
    }
    // redis-cli picks the primaries itself: ask each node its role, and wait for every replica's link.
    this.primaryPorts = [];
    for (const node of this.nodes) {
      const info = String(await askRedis(node.port, ['INFO', 'replication']));
      if (info.includes('role:master')) this.primaryPorts.push(node.port);
      else {
        await pollUntil(
          () => askRedis(node.port, ['INFO', 'replication']).then(String),
          (text) => text.includes('master_link_status:up'),
          { timeoutMs: 20_000, intervalMs: 50, description: `replica ${node.port} linked` },
        );
      }
    }
    return this;
  }

  /**
   * Stops (SIGSTOP) or resumes (SIGCONT) one node's process: a stopped replica acknowledges nothing. Resume it within
   * the node timeout (5 s) or the cluster marks it failing.
   */
  pause(port: number, paused: boolean): void {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    node.child.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  /** A cluster client for the test's own reads and writes. */
  client(): Cluster {
    const cluster = new Cluster(
      this.nodes.map((n) => ({ host: HOST, port: n.port })),
      { redisOptions: { maxRetriesPerRequest: 3 } },
    );
    cluster.on('error', () => undefined);
    return cluster;
  }

  /** A plain connection to one node (what it holds: DBSIZE, INFO commandstats). */
  node(port: number): Redis {
    return new Redis({ host: HOST, port, maxRetriesPerRequest: 1, retryStrategy: () => null });
  }

  async stop(): Promise<void> {
    process.off('exit', this.killOnExit);
    await Promise.all(
      this.nodes.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startNode(index: number): Promise<void> {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir];
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, `nodes-${index}.conf`));
    args.push('--cluster-node-timeout', '5000');
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.nodes.push({ port, child });
    await waitForRedis(port);
  }
}
