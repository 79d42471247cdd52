import 'reflect-metadata';
import { userInfo } from 'node:os';
import { CommandFactory, CommandRunnerService } from 'nest-commander';
import { ConfigError, loadConfig } from '../config/config.loader';
import { errorMessage } from '../streams/stream-errors';
import type { CliIo } from './cli-io';
import { CliUsageError, EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './cli.errors';
import { CliModule, CommanderRoot, type CommanderCommand } from './cli.module';

export interface RunCliOptions extends Partial<CliIo> {
  /** The environment to read the configuration from (default: the process's). */
  env?: NodeJS.ProcessEnv;
}

const HELP_FOOTER = `
Run as: npm run cli -- <command> [options]   (in a container: node dist/cli/main <command>)
The CLI uses the service's environment (REDIS_URL, STREAM_PREFIX, ...): point STREAM_PREFIX at a sandbox to inspect it.
Exit codes: 0 done, 1 failed, 2 bad arguments, 78 bad environment.`;

/**
 * Runs one CLI invocation in-process and returns its exit code; `main.ts` is a thin wrapper around it, and tests
 * call it directly with their own stdout/stderr buffers and environment.
 */
export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const io: CliIo = {
    stdout: options.stdout ?? process.stdout,
    stderr: options.stderr ?? process.stderr,
    signal: options.signal ?? new AbortController().signal,
    user: options.user ?? operatorName(),
  };
  let config;
  try {
    config = loadConfig(options.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return EXIT_CONFIG;
  }
  let failure: unknown;
  const app = await CommandFactory.createWithoutRunning(CliModule.forRoot(config, io), {
    logger: false,
    serviceErrorHandler: (err: Error) => {
      failure = err;
    },
  });
  try {
    configureTree(app.get(CommanderRoot).command, io);
    await app.get(CommandRunnerService).run(['node', 'cli', ...argv]);
  } finally {
    await app.close();
  }
  return exitCode(failure, io);
}

/** Every (sub)command: output to our streams, errors thrown instead of process.exit, usage after a mistake. */
function configureTree(root: CommanderCommand, io: CliIo): void {
  root.name('cli').description('comfy-relay operator CLI').addHelpText('after', HELP_FOOTER);
  const visit = (command: CommanderCommand) => {
    command
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
      .showHelpAfterError()
      .allowExcessArguments(false);
    for (const child of command.commands) visit(child);
  };
  visit(root);
}

function exitCode(failure: unknown, io: CliIo): number {
  if (failure === undefined) return EXIT_OK;
  if (isCommanderError(failure)) {
    // commander has already printed the error and the usage.
    return failure.code === 'commander.helpDisplayed' || failure.code === 'commander.version' ? EXIT_OK : EXIT_USAGE;
  }
  if (failure instanceof CliUsageError) {
    io.stderr.write(`error: ${failure.message}\n${failure.usage ? `\n${failure.usage}` : ''}`);
    return EXIT_USAGE;
  }
  io.stderr.write(`error: ${errorMessage(failure)}\n`);
  return EXIT_FAILURE;
}

function isCommanderError(err: unknown): err is { code: string; exitCode: number } {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code.startsWith('commander.')
  );
}

function operatorName(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}
