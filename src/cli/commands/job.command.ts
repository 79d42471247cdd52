import { Command, Option } from 'nest-commander';
import { CliOutput } from '../cli-io';
import { CliFailure } from '../cli.errors';
import { JobInspectorService } from '../services/job-inspector.service';
import { printJobReport } from '../services/job-report.printer';
import { CliCommand } from './cli-command';

interface JobOptions {
  json?: boolean;
}

@Command({
  name: 'job',
  arguments: '<id>',
  description:
    'Everything about one job: every event with time, actor, attempt, deliveries per group and durations; ' +
    'the attempts history, dead letters, re-drives, and why it failed',
})
export class JobCommand extends CliCommand {
  constructor(
    private readonly inspector: JobInspectorService,
    private readonly out: CliOutput,
  ) {
    super();
  }

  async run([id]: string[], options: JobOptions): Promise<void> {
    const jobId = this.jobId(id);
    const report = await this.inspector.inspect(jobId);
    if (!report) {
      throw new CliFailure(
        `no trace of job ${jobId} under prefix ${this.inspector.prefix}: no view, record, event or dead letter ` +
          '(wrong STREAM_PREFIX, or older than STREAM_RETENTION_MS?)',
      );
    }
    if (options.json) this.out.json(report);
    else printJobReport(this.out, report);
  }

  @Option({ flags: '--json', description: 'print the report as JSON' })
  parseJson(): boolean {
    return true;
  }
}
