import { Command } from 'nest-commander';
import { CliCommand } from './cli-command';
import { DlqListCommand } from './dlq-list.command';
import { DlqRedriveCommand } from './dlq-redrive.command';

@Command({
  name: 'dlq',
  description: 'Dead letters: list them, re-drive them',
  subCommands: [DlqListCommand, DlqRedriveCommand],
})
export class DlqCommand extends CliCommand {
  run(): Promise<void> {
    return Promise.reject(this.usageError('choose a subcommand: list or redrive'));
  }
}
