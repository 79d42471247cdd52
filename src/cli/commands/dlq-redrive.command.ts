import { Option, SubCommand } from 'nest-commander';
import { CliOutput } from '../cli-io';
import { CliFailure } from '../cli.errors';
import { DlqService, RedriveError, type RedriveResult } from '../../modules/operations';
import { CliCommand } from './cli-command';

const DLQ_ID = /^\d+-\d+$/;
const DEFAULT_REASON = 're-driven from the CLI';

interface RedriveOptions {
  all?: boolean;
  reason?: string;
  by?: string;
  force?: boolean;
  json?: boolean;
}

@SubCommand({
  name: 'redrive',
  arguments: '[dlq-entry-id]',
  description:
    'Append a fresh job.requested (new job id, linked by redriveOf) for a dead-lettered request, recording who and ' +
    'why; an entry is re-driven at most once',
})
export class DlqRedriveCommand extends CliCommand {
  constructor(
    private readonly dlq: DlqService,
    private readonly out: CliOutput,
  ) {
    super();
  }

  async run([id]: string[], options: RedriveOptions): Promise<void> {
    if (id && options.all) throw this.usageError('give a DLQ entry id or --all, not both');
    if (!id && !options.all) throw this.usageError('give a DLQ entry id (see dlq list) or --all');
    if (id && !DLQ_ID.test(id)) throw this.usageError(`"${id}" is not a DLQ entry id (like 1714550400000-0)`);
    const by = options.by ?? this.out.user;
    const reason = options.reason ?? DEFAULT_REASON;
    if (id) {
      const result = await this.redriveOne(id, by, reason, options.force === true);
      if (options.json) this.out.json(result);
      else this.printDone(result, by);
      return;
    }
    const done: RedriveResult[] = [];
    const skipped: { dlqEntryId: string; why: string }[] = [];
    for (const item of await this.dlq.all()) {
      if (item.redrivenAs || item.notRedrivable) continue;
      try {
        done.push(await this.dlq.redrive(item.id, { by, reason, force: options.force === true }));
      } catch (err) {
        if (!(err instanceof RedriveError)) throw err;
        skipped.push({ dlqEntryId: item.id, why: err.message });
      }
    }
    if (options.json) {
      this.out.json({ redriven: done, skipped });
      return;
    }
    for (const result of done) this.printDone(result, by);
    for (const s of skipped) this.out.line(`skipped ${s.dlqEntryId}: ${s.why}`);
    this.out.line(`${done.length} re-driven, ${skipped.length} skipped`);
  }

  private async redriveOne(id: string, by: string, reason: string, force: boolean): Promise<RedriveResult> {
    try {
      return await this.dlq.redrive(id, { by, reason, force });
    } catch (err) {
      if (err instanceof RedriveError) throw new CliFailure(err.message);
      throw err;
    }
  }

  private printDone(r: RedriveResult, by: string): void {
    this.out.line(
      `re-drove ${r.dlqEntryId} (job ${r.originalJobId}) as job ${r.jobId}: queued for ${r.stream}, ticket ${r.ticket}, by ${by}`,
    );
  }

  @Option({ flags: '--all', description: 'every dead-lettered request not re-driven yet' })
  parseAll(): boolean {
    return true;
  }

  @Option({ flags: '--reason <text>', description: 'why it should work now (recorded with the new request)' })
  parseReason(value: string): string {
    if (!value.trim()) throw this.usageError('--reason must not be empty');
    return value.trim().slice(0, 500);
  }

  @Option({ flags: '--by <name>', description: 'operator name to record (default: the OS user)' })
  parseBy(value: string): string {
    if (!/^[\w.@-]{1,64}$/.test(value)) throw this.usageError('--by must be 1-64 characters of letters, digits, _.@-');
    return value;
  }

  @Option({ flags: '--force', description: 're-drive even if image inputs have expired from the blob store' })
  parseForce(): boolean {
    return true;
  }

  @Option({ flags: '--json', description: 'print the result as JSON' })
  parseJson(): boolean {
    return true;
  }
}
