import { Command } from 'nest-commander';
import { CliCommand } from './cli-command';
import { ProjectionsRebuildCommand } from './projections-rebuild.command';

@Command({
  name: 'projections',
  description: 'Read models built from the events (jobs:view:*)',
  subCommands: [ProjectionsRebuildCommand],
})
export class ProjectionsCommand extends CliCommand {
  run(): Promise<void> {
    return Promise.reject(this.usageError('choose a subcommand: rebuild'));
  }
}
