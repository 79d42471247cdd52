import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { waitFor } from './deadline';

export function connect(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false });
}

/** Deletes every key under each prefix (SCAN in bounded batches). Returns how many keys were deleted. */
export async function cleanupPrefixes(redis: Redis, prefixes: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const prefix of prefixes) {
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  }
  return deleted;
}

export async function countKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let count = 0;
  for (let i = 0; i < 100_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    count += keys.length;
    cursor = next;
    if (cursor === '0') break;
  }
  return count;
}

export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

export interface RedisCounters {
  /** calls per command name (commands run inside Lua scripts are counted too). */
  calls: Map<string, number>;
  /** µs Redis spent in each command (INFO commandstats usec; a script's own commands count in it and in EVALSHA). */
  usec: Map<string, number>;
  cpuSeconds: number;
  /** The kernel's share of cpuSeconds (socket reads and writes, epoll): what round trips and wake-ups cost. */
  cpuSysSeconds: number;
  /** Socket reads Redis processed (INFO stats total_reads_processed): ≈ client round trips. */
  reads: number;
}

export async function readCounters(redis: Redis): Promise<RedisCounters> {
  const stats = parseInfo(await redis.info('commandstats'));
  const cpu = parseInfo(await redis.info('cpu'));
  const reads = Number(parseInfo(await redis.info('stats')).get('total_reads_processed') ?? 0);
  const calls = new Map<string, number>();
  const usec = new Map<string, number>();
  for (const [key, value] of stats) {
    if (!key.startsWith('cmdstat_')) continue;
    const name = key.slice('cmdstat_'.length);
    const m = /calls=(\d+)/.exec(value);
    if (m) calls.set(name, Number(m[1]));
    const u = /usec=(\d+)/.exec(value);
    if (u) usec.set(name, Number(u[1]));
  }
  const cpuSeconds = Number(cpu.get('used_cpu_sys') ?? 0) + Number(cpu.get('used_cpu_user') ?? 0);
  const cpuSysSeconds = Number(cpu.get('used_cpu_sys') ?? 0);
  return { calls, usec, cpuSeconds, cpuSysSeconds, reads };
}

/** Commands the bench itself sends to observe (INFO, polling): not part of the system under test. */
const OBSERVER_COMMANDS = new Set(['info', 'xinfo|groups', 'xinfo', 'scan', 'unlink', 'ping', 'client|setname']);

export interface CounterDelta {
  total: number;
  evals: number;
  byCommand: [string, number][];
  /** µs per command name over the window, highest first. */
  usecByCommand: [string, number][];
  cpuSeconds: number;
  cpuSysSeconds: number;
  reads: number;
}

/** `observerReads`: round trips the bench itself made in the window (INFO calls, polls), subtracted from reads. */
export function counterDelta(
  before: RedisCounters,
  after: RedisCounters,
  subtract: Record<string, number> = {},
  observerReads = 0,
) {
  const byCommand: [string, number][] = [];
  let total = 0;
  let evals = 0;
  for (const [name, calls] of after.calls) {
    let delta = calls - (before.calls.get(name) ?? 0) - (subtract[name] ?? 0);
    if (OBSERVER_COMMANDS.has(name) || delta <= 0) continue;
    delta = Math.max(0, delta);
    total += delta;
    if (name === 'eval' || name === 'evalsha' || name.startsWith('fcall')) evals += delta;
    byCommand.push([name, delta]);
  }
  byCommand.sort((a, b) => b[1] - a[1]);
  const usecByCommand: [string, number][] = [];
  for (const [name, us] of after.usec) {
    const delta = us - (before.usec.get(name) ?? 0);
    if (!OBSERVER_COMMANDS.has(name) && delta > 0) usecByCommand.push([name, delta]);
  }
  usecByCommand.sort((a, b) => b[1] - a[1]);
  return {
    total,
    evals,
    byCommand,
    usecByCommand,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    cpuSysSeconds: after.cpuSysSeconds - before.cpuSysSeconds,
    reads: Math.max(0, after.reads - before.reads - observerReads),
  } satisfies CounterDelta;
}

export async function serverVersion(redis: Redis): Promise<string> {
  return parseInfo(await redis.info('server')).get('redis_version') ?? 'unknown';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway redis-server (no persistence, 127.0.0.1) so INFO commandstats counts only the system under test —
 * other sessions may share the local Redis. Null when no redis-server binary is installed.
 */
export class PrivateRedis {
  private constructor(
    readonly url: string,
    private readonly port: number,
    private readonly dir: string,
    private readonly pid: number | undefined,
  ) {}

  static async start(): Promise<PrivateRedis | null> {
    if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return null;
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'comfy-relay-bench-redis-'));
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    const server = new PrivateRedis(`redis://127.0.0.1:${port}`, port, dir, proc.pid);
    process.once('exit', server.killOnExit);
    const probe = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await waitFor(
        'private redis-server answering',
        async () => {
          try {
            if (probe.status !== 'ready') await probe.connect();
            return (await probe.ping()) === 'PONG';
          } catch {
            probe.disconnect();
            return false;
          }
        },
        (ok) => ok,
        { timeoutMs: 5_000, intervalMs: 50 },
      );
    } catch (err) {
      server.stop();
      throw err;
    } finally {
      probe.disconnect();
    }
    return server;
  }

  private readonly killOnExit = (): void => {
    if (this.pid === undefined) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  stop(): void {
    process.off('exit', this.killOnExit);
    this.killOnExit();
    // Nothing is persisted (--save "", no AOF): the folder can go at once, even if the process is still dying.
    rmSync(this.dir, { recursive: true, force: true });
  }

  get portNumber(): number {
    return this.port;
  }
}
