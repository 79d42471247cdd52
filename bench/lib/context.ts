import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { CompiledTree } from './build';
import { ChildRegistry, type Child } from './children';
import { waitFor } from './deadline';
import { cleanupPrefixes, connect } from './redis-tools';

export interface MeasureResult {
  /** Which of the measures this row belongs to (1..6). */
  measure: number;
  name: string;
  value: number;
  unit: string;
  /** The baseline's value measured in the same run on the same Redis, when the row has one. */
  baseline: number | null;
  baselineName: string | null;
  /** value ÷ baseline. */
  ratio: number | null;
  /** The target for this row, in words, and whether this run met it (null: no target). */
  target: string | null;
  pass: boolean | null;
  note?: string;
}

export interface BenchOptions {
  quick: boolean;
  redisUrl: string;
  tree: CompiledTree;
  cpuProfDir?: string;
  log: (line: string) => void;
}

/** What a measure gets: options, an observer Redis connection, unique prefixes (cleaned up), child processes. */
export class BenchContext {
  readonly runId = randomUUID().slice(0, 8);
  readonly children = new ChildRegistry();
  readonly details: Record<string, unknown> = {};
  private readonly prefixes: { url: string; prefix: string }[] = [];
  private readonly connections = new Map<string, Redis>();

  constructor(readonly options: BenchOptions) {}

  get quick(): boolean {
    return this.options.quick;
  }

  get redisUrl(): string {
    return this.options.redisUrl;
  }

  log(line: string): void {
    this.options.log(line);
  }

  /** An observer connection to `url` (default: the bench Redis), reused and closed at the end. */
  redis(url = this.options.redisUrl): Redis {
    let conn = this.connections.get(url);
    if (!conn) {
      conn = connect(url);
      this.connections.set(url, conn);
    }
    return conn;
  }

  /** A fresh key prefix for one measure step; every key under it is deleted by cleanup(). */
  prefix(label: string, url = this.options.redisUrl): string {
    const prefix = `bench:${label}:${this.runId}:${randomUUID().slice(0, 6)}:`;
    this.prefixes.push({ url, prefix });
    return prefix;
  }

  /** Deletes the keys of every prefix handed out so far (also called between measures). */
  async cleanup(): Promise<void> {
    for (const { url, prefix } of this.prefixes.splice(0)) {
      await cleanupPrefixes(this.redis(url), [prefix]).catch((err: unknown) => {
        this.log(`  cleanup of ${prefix} failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
  }

  forgetConnection(url: string): void {
    this.connections.get(url)?.disconnect();
    this.connections.delete(url);
  }

  /** A comfy-relay process for `env.ROLE`, started from the compiled tree; resolves once it listens. */
  async startApp(name: string, env: Record<string, string>, { profile = false } = {}): Promise<Child> {
    const nodeArgs =
      profile && this.options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.options.cpuProfDir}`] : [];
    const child = this.children.spawn(name, this.options.tree.script('bench/children/app-child.ts'), {
      nodeArgs,
      env: {
        ...this.options.tree.env(),
        REDIS_URL: this.options.redisUrl,
        PORT: '0',
        LOG_LEVEL: 'silent',
        SHUTDOWN_GRACE_MS: '2000',
        INSTANCE_NAME: name,
        ...env,
      },
    });
    try {
      await child.waitForLine(/^READY /, 30_000);
    } catch (err) {
      await child.kill9();
      throw err;
    }
    return child;
  }

  /** `count` ComfyUI simulators in one separate process (the project's own CLI); resolves with their URLs. */
  async startSimulators(name: string, count: number, stepMs: number): Promise<{ child: Child; urls: string[] }> {
    const child = this.children.spawn(name, this.options.tree.script('src/tools/comfyui-sim/main.ts'), {
      args: ['--port', '0', '--count', String(count), '--step-ms', String(stepMs), '--host', '127.0.0.1'],
      env: this.options.tree.env(),
    });
    child.stopsOnStdin = false; // the simulator CLI stops on SIGTERM
    try {
      const { value: urls } = await waitFor(
        `${name}: ${count} simulator URLs`,
        () => child.lines.filter((l) => l.startsWith('http://')),
        (lines) => lines.length >= count || !child.alive,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      if (urls.length < count) throw new Error(`${name} exited before printing ${count} URLs:\n${child.stderr()}`);
      return { child, urls: urls.slice(0, count) };
    } catch (err) {
      await child.kill9();
      throw err;
    }
  }

  async dispose(): Promise<void> {
    await this.children.stopAll();
    await this.cleanup();
    for (const conn of this.connections.values()) conn.disconnect();
    this.connections.clear();
    this.children.dispose();
  }
}

export function result(
  measure: number,
  name: string,
  value: number,
  unit: string,
  extra: Partial<Omit<MeasureResult, 'measure' | 'name' | 'value' | 'unit'>> = {},
): MeasureResult {
  const baseline = extra.baseline ?? null;
  const ratio = extra.ratio !== undefined ? extra.ratio : baseline ? value / baseline : null;
  return {
    measure,
    name,
    value,
    unit,
    baseline,
    baselineName: extra.baselineName ?? null,
    ratio,
    target: extra.target ?? null,
    pass: extra.pass ?? null,
    ...(extra.note ? { note: extra.note } : {}),
  };
}
