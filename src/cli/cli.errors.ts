/** Bad arguments: the CLI prints the message and the command's usage, and exits 2. */
export class CliUsageError extends Error {
  constructor(
    message: string,
    /** Usage text of the command that refused the arguments. */
    readonly usage?: string,
  ) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** The command ran and could not do what was asked (unknown job, already re-driven...): exit 1. */
export class CliFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliFailure';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** Same as the service: a bad environment (EX_CONFIG). */
export const EXIT_CONFIG = 78;
