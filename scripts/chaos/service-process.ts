import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ENV_VARIABLES } from '../../src/config/app-config.dto';
import { sleep } from './deadline';

export type ServiceRole = 'api' | 'gpu' | 'bot' | 'projector';

export interface UnexpectedExit {
  name: string;
  code: number | null;
  signal: string | null;
  at: number;
  stderrTail: string;
}

const READY_LINE = /"msg":"comfy-relay started"/;

/**
 * One service process (`node main.js` with ROLE and its own INSTANCE_NAME, so a restart resumes its consumer
 * names). stdout/stderr go to `<logDir>/<name>.log` (kept across restarts, scanned for secrets at the end).
 * The tool kills it with SIGKILL and starts it again; any other exit is recorded as a crash and restarted.
 */
export class ServiceProcess {
  private child?: ChildProcess;
  private readonly log: WriteStream;
  private readyWaiters: (() => void)[] = [];
  private ready = false;
  private killedByUs = false;
  private stderrTail: string[] = [];
  private stopped = false;
  starts = 0;
  kills = 0;
  readonly unexpectedExits: UnexpectedExit[] = [];
  lastReadyMs = 0;

  constructor(
    readonly name: string,
    readonly role: ServiceRole,
    private readonly entry: string,
    private readonly env: Record<string, string>,
    logDir: string,
    private readonly onUnexpectedExit: (exit: UnexpectedExit) => void,
  ) {
    this.logPath = join(logDir, `${name}.log`);
    this.log = createWriteStream(this.logPath, { flags: 'a' });
  }

  readonly logPath: string;

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get isReady(): boolean {
    return this.alive && this.ready;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.alive || this.stopped) return;
    const base: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !(ENV_VARIABLES as readonly string[]).includes(key)) base[key] = value;
    }
    const startedAt = Date.now();
    this.ready = false;
    this.killedByUs = false;
    this.starts++;
    const child = spawn(process.execPath, [this.entry], {
      env: { ...base, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log.write(`\n### [chaos] start #${this.starts} pid=${child.pid} at ${new Date().toISOString()}\n`);
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.log.write(chunk);
      if (this.ready) return;
      pending += chunk;
      if (READY_LINE.test(pending)) {
        this.ready = true;
        this.lastReadyMs = Date.now() - startedAt;
        pending = '';
        for (const wake of this.readyWaiters.splice(0)) wake();
      } else if (pending.length > 100_000) {
        pending = pending.slice(-1000);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.log.write(chunk);
      this.stderrTail.push(chunk);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    child.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      this.log.write(`### [chaos] exit pid=${child.pid} code=${code} signal=${signal}\n`);
      for (const wake of this.readyWaiters.splice(0)) wake();
      if (this.killedByUs || this.stopped) return;
      const exit: UnexpectedExit = {
        name: this.name,
        code,
        signal,
        at: Date.now(),
        stderrTail: this.stderrTail.join('').slice(-2000),
      };
      this.unexpectedExits.push(exit);
      this.onUnexpectedExit(exit);
    });
  }

  /** Resolves true once the process logged "comfy-relay started", false on exit or timeout. */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    if (!this.alive) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.readyWaiters = this.readyWaiters.filter((w) => w !== finish);
        resolve(this.isReady);
      };
      this.readyWaiters.push(finish);
    });
  }

  /** kill -9; resolves when the process is gone. */
  async kill9(counted = true): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    this.killedByUs = true;
    if (counted) this.kills++;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(10_000)]);
  }

  /** The end of the run: SIGKILL, never restarted again. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.kill9(false);
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}
