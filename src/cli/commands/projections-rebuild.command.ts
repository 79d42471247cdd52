import { Option, SubCommand } from 'nest-commander';
import { CliOutput } from '../cli-io';
import { ProjectionRebuildService } from '../services/projection-rebuild.service';
import { formatTable } from '../text-table';
import { CliCommand } from './cli-command';

const SHOWN = 200;

@SubCommand({
  name: 'rebuild',
  description: 'Replay the streams through the projector reducer, report how jobs:view:* differs, and fix it',
})
export class ProjectionsRebuildCommand extends CliCommand {
  constructor(
    private readonly rebuild: ProjectionRebuildService,
    private readonly out: CliOutput,
  ) {
    super();
  }

  async run(_args: string[], options: { dryRun?: boolean; json?: boolean }): Promise<void> {
    const report = await this.rebuild.rebuild({ dryRun: options.dryRun === true });
    if (options.json) {
      this.out.json(report);
      return;
    }
    const out = this.out;
    out.line(
      `replayed ${report.jobs} job(s); ${report.differingJobs.length} view(s) differ ` +
        `(${report.differences.length} field(s))`,
    );
    if (report.differences.length > 0) {
      const rows = formatTable(report.differences.slice(0, SHOWN), [
        { header: 'job', value: (d) => d.jobId },
        { header: 'field', value: (d) => d.field },
        { header: 'live', value: (d) => show(d.live), max: 60 },
        { header: 'replayed', value: (d) => show(d.replayed), max: 60 },
      ]);
      for (const line of rows) out.line(`  ${line}`);
      if (report.differences.length > SHOWN) out.line(`  … and ${report.differences.length - SHOWN} more (--json)`);
    }
    if (report.dryRun) {
      if (report.differingJobs.length > 0) out.line('dry run: nothing written');
      return;
    }
    out.line(`wrote ${report.written.length} view(s)`);
    if (report.skippedConcurrent.length > 0) {
      out.line(
        `${report.skippedConcurrent.length} view(s) changed while rebuilding (projector running) and were left ` +
          `alone: run the rebuild again`,
      );
    }
  }

  @Option({ flags: '--dry-run', description: 'only report the differences' })
  parseDryRun(): boolean {
    return true;
  }

  @Option({ flags: '--json', description: 'print the report as JSON' })
  parseJson(): boolean {
    return true;
  }
}

function show(value: unknown): string {
  return value === undefined ? '(missing)' : typeof value === 'string' ? value : JSON.stringify(value);
}
