export interface Writable {
  write(chunk: string): unknown;
}

/** Where the CLI writes and what it knows about its caller; tests pass buffers and an abort signal. */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  /** Aborted on Ctrl-C: `tail` stops following and exits 0. */
  signal: AbortSignal;
  /** Recorded as the operator on re-drives unless `--by` is given. */
  user: string;
}

export const CLI_IO = Symbol('CLI_IO');

/** Line-oriented output for commands: humans read tables, scripts read `--json`. */
export class CliOutput {
  constructor(private readonly io: CliIo) {}

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  json(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One JSON document per line, for streams of events (`tail --json`). */
  jsonLine(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }

  warn(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  get signal(): AbortSignal {
    return this.io.signal;
  }

  get user(): string {
    return this.io.user;
  }
}
