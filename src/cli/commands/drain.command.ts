import { Injectable } from '@nestjs/common';
import { Command, Option, SubCommand } from 'nest-commander';
import { DrainService, type DrainStatus } from '../../modules/operations';
import { CliOutput } from '../cli-io';
import { CliCommand } from './cli-command';

interface DrainOptions {
  by?: string;
  json?: boolean;
}

/** Prints the status as a line (or JSON): the same words for on, off and status. */
@Injectable() // emits the constructor's parameter types, which the subcommands inherit for injection
abstract class DrainVerb extends CliCommand {
  constructor(
    protected readonly drain: DrainService,
    protected readonly out: CliOutput,
  ) {
    super();
  }

  protected print(status: DrainStatus, json: boolean | undefined): void {
    if (json) {
      this.out.line(JSON.stringify(status));
      return;
    }
    this.out.line(
      status.draining
        ? `draining: new jobs are refused (since ${status.since ?? '?'}, by ${status.by ?? '?'}); queued and running jobs finish`
        : 'not draining: new jobs are accepted',
    );
  }

  @Option({ flags: '--json', description: 'print as JSON' })
  parseJson(): boolean {
    return true;
  }
}

@SubCommand({ name: 'on', description: 'Refuse new jobs (503 draining) while queued and running ones finish' })
export class DrainOnCommand extends DrainVerb {
  async run(_args: string[], options: DrainOptions = {}): Promise<void> {
    this.print(await this.drain.on(`cli:${options.by ?? this.out.user}`), options.json);
  }

  @Option({ flags: '--by <name>', description: 'operator name to record (default: the OS user)' })
  parseBy(value: string): string {
    return value;
  }
}

@SubCommand({ name: 'off', description: 'Accept new jobs again' })
export class DrainOffCommand extends DrainVerb {
  async run(_args: string[], options: DrainOptions = {}): Promise<void> {
    this.print(await this.drain.off(), options.json);
  }
}

@SubCommand({ name: 'status', description: 'Whether new jobs are refused, since when and by whom' })
export class DrainStatusCommand extends DrainVerb {
  async run(_args: string[], options: DrainOptions = {}): Promise<void> {
    this.print(await this.drain.status(), options.json);
  }
}

@Command({
  name: 'drain',
  description: 'Drain mode: refuse new jobs while the queued and running ones finish (before a deploy)',
  subCommands: [DrainOnCommand, DrainOffCommand, DrainStatusCommand],
})
export class DrainCommand extends CliCommand {
  run(): Promise<void> {
    return Promise.reject(this.usageError('choose a subcommand: on, off or status'));
  }
}
