import { Option, SubCommand } from 'nest-commander';
import { CliOutput } from '../cli-io';
import { DlqService } from '../../modules/operations';
import { formatTable } from '../text-table';
import { CliCommand } from './cli-command';

interface ListOptions {
  limit?: number;
  job?: string;
  json?: boolean;
}

@SubCommand({
  name: 'list',
  description: 'Dead letters, newest first, with the reason and whether they were re-driven',
})
export class DlqListCommand extends CliCommand {
  constructor(
    private readonly dlq: DlqService,
    private readonly out: CliOutput,
  ) {
    super();
  }

  async run(_args: string[], options: ListOptions): Promise<void> {
    const items = await this.dlq.list({ limit: options.limit ?? 50, jobId: options.job });
    if (options.json) {
      this.out.json(items);
      return;
    }
    if (items.length === 0) {
      this.out.line('The DLQ is empty.');
      return;
    }
    const rows = formatTable(items, [
      { header: 'dlq id', value: (d) => d.id },
      { header: 'at', value: (d) => d.at },
      { header: 'group', value: (d) => d.group },
      { header: 'type', value: (d) => d.type ?? '?' },
      { header: 'job', value: (d) => d.jobId ?? '-' },
      { header: 'deliveries', value: (d) => String(d.deliveries), align: 'right' },
      { header: 're-driven as', value: (d) => d.redrivenAs ?? (d.notRedrivable ? 'n/a' : '-') },
      { header: 'reason', value: (d) => d.reason, max: 100 },
    ]);
    for (const line of rows) this.out.line(line);
  }

  @Option({ flags: '--limit <n>', description: 'at most n entries (default 50)' })
  parseLimit(value: string): number {
    return this.integer('--limit', value, 1);
  }

  @Option({ flags: '--job <id>', description: "only this job's dead letters" })
  parseJob(value: string): string {
    return this.jobId(value);
  }

  @Option({ flags: '--json', description: 'print as JSON' })
  parseJson(): boolean {
    return true;
  }
}
