import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DeadlineError } from './deadline';

const MAX_KEPT_LINES = 200;

/** A node child process with its stdout lines, readiness by line pattern, RSS from /proc, and a bounded stop. */
export class Child {
  readonly lines: string[] = [];
  private readonly stderrTail: string[] = [];
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;
  /** false for programs that do not read the `exit` line (they get SIGTERM straight away). */
  stopsOnStdin = true;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    let pending = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        if (this.lines.length > MAX_KEPT_LINES) this.lines.shift();
      }
      for (const wake of [...this.waiters]) wake();
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      this.stderrTail.push(...chunk.split('\n').filter((l) => l.trim() !== ''));
      if (this.stderrTail.length > 40) this.stderrTail.splice(0, this.stderrTail.length - 40);
    });
    proc.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const wake of [...this.waiters]) wake();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  stderr(): string {
    return this.stderrTail.join('\n');
  }

  /** Waits for a stdout line matching `pattern` (already seen lines count). */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (const line of this.lines) {
          const m = pattern.exec(line);
          if (m) {
            finish();
            resolve(m);
            return true;
          }
        }
        if (!this.alive) {
          finish();
          reject(
            new Error(`${this.name} exited (${this.exitCode}) before printing ${pattern}; stderr:\n${this.stderr()}`),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new DeadlineError(`${this.name}: no ${pattern} within ${timeoutMs} ms; stderr:\n${this.stderr()}`));
      }, timeoutMs);
      const wake = (): void => void check();
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
      check();
    });
  }

  send(line: string): void {
    if (this.alive) this.proc.stdin?.write(`${line}\n`);
  }

  /** Resident set size in MB from /proc (Linux), null when unavailable. */
  rssMb(): number | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return m ? Number(m[1]) / 1024 : null;
    } catch {
      return null;
    }
  }

  /** Asks politely (stdin "exit", then SIGTERM), then SIGKILL; never waits longer than `graceMs` in total. */
  async stop(graceMs = 8_000): Promise<void> {
    if (!this.alive) return;
    if (this.stopsOnStdin) {
      this.send('exit');
      if (await this.exitsWithin(graceMs / 2)) return;
    }
    this.proc.kill('SIGTERM');
    if (await this.exitsWithin(graceMs / 2)) return;
    await this.kill9();
  }

  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGKILL');
    await this.exitsWithin(5_000);
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    if (!this.alive) return true;
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
    clearTimeout(timer);
    return result;
  }
}

/** Every child the bench starts, so that none outlives the bench (normal end, error, deadline or Ctrl-C). */
export class ChildRegistry {
  private readonly children = new Set<Child>();
  private readonly onExit = (): void => {
    for (const child of this.children) if (child.alive) child.proc.kill('SIGKILL');
  };

  constructor() {
    process.on('exit', this.onExit);
  }

  spawn(
    name: string,
    script: string,
    { args = [], env = {}, nodeArgs = [] }: { args?: string[]; env?: Record<string, string>; nodeArgs?: string[] } = {},
  ): Child {
    const proc = spawn(process.execPath, [...nodeArgs, script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const child = new Child(name, proc);
    this.children.add(child);
    void child.exited.then(() => this.children.delete(child));
    return child;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children].map((c) => c.stop()));
  }

  dispose(): void {
    this.onExit();
    process.off('exit', this.onExit);
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null when unavailable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is state (field 3); utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU used by a set of named processes between start() and stop(), as a share of one core over the window. */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private t0 = 0;
  /** name → CPU seconds used during the last begin() … end() window, unrounded (set by end()). */
  seconds: Record<string, number> = {};

  constructor(private readonly pids: Record<string, number>) {}

  begin(): void {
    this.t0 = performance.now();
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpu = processCpuSeconds(pid);
      if (cpu !== null) this.start.set(name, cpu);
    }
  }

  /** name → share of one core (1.0 = a full core) during the window. */
  end(): Record<string, number> {
    const wall = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    this.seconds = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const before = this.start.get(name);
      const after = processCpuSeconds(pid);
      if (before !== undefined && after !== null) this.seconds[name] = after - before;
      if (before !== undefined && after !== null && wall > 0)
        out[name] = Math.round(((after - before) / wall) * 100) / 100;
    }
    return out;
  }
}
