import { Inject } from '@nestjs/common';
import { Command, Option } from 'nest-commander';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { CliOutput } from '../cli-io';
import { parseStreamPosition } from '../stream-position.parser';
import { ReplayService, type ReplayPlan } from '../services/replay.service';
import { formatTable } from '../text-table';
import { CliCommand } from './cli-command';

/** Same rule as STREAM_PREFIX. */
const PREFIX = /^[A-Za-z0-9:_{}.-]{1,64}$/;
const SHOWN = 200;

interface ReplayOptions {
  from: string;
  to?: string;
  type?: Set<string>;
  into?: string;
  yes?: boolean;
  dryRun?: boolean;
  limit?: number;
  json?: boolean;
}

@Command({
  name: 'replay',
  description:
    'Copy a time window of the request and event streams into a sandbox prefix (--into), where a local pipeline ' +
    're-runs them. Without --into it is a dry run that prints what would be appended; the live prefix is written ' +
    'only with --yes',
})
export class ReplayCommand extends CliCommand {
  constructor(
    private readonly replay: ReplayService,
    private readonly out: CliOutput,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
  }

  async run(_args: string[], options: ReplayOptions): Promise<void> {
    const from = parseStreamPosition(options.from);
    if (!from) throw this.usageError(`--from "${options.from}" is neither a stream id nor an ISO time`);
    const to = options.to === undefined ? '+' : parseStreamPosition(options.to, true);
    if (!to) throw this.usageError(`--to "${options.to ?? ''}" is neither a stream id nor an ISO time`);
    const live = this.config.streamPrefix;
    const target = options.into ?? live;
    const intoLive = target === live;
    if (options.into !== undefined && intoLive && !options.yes) {
      throw this.usageError(`--into ${target} is the live prefix: add --yes to append to live streams`);
    }
    const write = !options.dryRun && (intoLive ? options.yes === true : true);

    const plan = await this.replay.plan({ from, to, types: options.type, limit: options.limit ?? 10_000 });
    if (!write) {
      if (options.json) this.out.json({ dryRun: true, target, from, to, ...plan });
      else this.printPlan(plan, target, from, to);
      return;
    }
    const result = await this.replay.apply(plan, target);
    if (options.json) {
      this.out.json({ dryRun: false, from, to, skipped: plan.skipped, ...result });
      return;
    }
    this.out.line(`appended ${result.appended} entries to prefix ${target}${intoLive ? ' (LIVE)' : ''}`);
    for (const [stream, n] of Object.entries(result.byStream)) this.out.line(`  ${stream}: ${n}`);
    if (!intoLive) this.out.line(`blobs copied: ${result.blobs.copied}, missing (expired): ${result.blobs.missing}`);
    if (!intoLive) {
      this.out.line(`run a pipeline on it:  STREAM_PREFIX=${target} ROLE=all PORT=3100 npm start`);
    }
  }

  private printPlan(plan: ReplayPlan, target: string, from: string, to: string): void {
    const out = this.out;
    out.line(`dry run: would append ${plan.items.length} entries (window ${from} .. ${to}) to prefix ${target}`);
    const byType = new Map<string, number>();
    for (const item of plan.items) byType.set(item.type, (byType.get(item.type) ?? 0) + 1);
    for (const [type, n] of byType) out.line(`  ${type}: ${n}`);
    if (plan.skipped.otherType + plan.skipped.malformed > 0) {
      out.line(`  skipped: ${plan.skipped.otherType} of other types, ${plan.skipped.malformed} unreadable`);
    }
    if (plan.items.length > 0) {
      out.line();
      const rows = formatTable(plan.items.slice(0, SHOWN), [
        { header: 'entry', value: (i) => i.id },
        { header: 'stream', value: (i) => i.stream },
        { header: 'type', value: (i) => i.type },
        { header: 'job', value: (i) => i.jobId },
        { header: 'occurred at', value: (i) => i.occurredAt },
      ]);
      for (const line of rows) out.line(`  ${line}`);
      if (plan.items.length > SHOWN) out.line(`  … and ${plan.items.length - SHOWN} more (--json lists all)`);
    }
    out.line();
    out.line('nothing written. Add --into <sandbox prefix> to copy, or --yes to append to the live prefix.');
  }

  @Option({ flags: '--from <id|time>', description: 'first entry: stream id or ISO time (inclusive)', required: true })
  parseFrom(value: string): string {
    return value;
  }

  @Option({ flags: '--to <id|time>', description: 'last entry: stream id or ISO time (inclusive; default: the end)' })
  parseTo(value: string): string {
    return value;
  }

  @Option({ flags: '--type <types>', description: 'only these event types (comma list, repeatable)' })
  parseType(value: string, previous?: Set<string>): Set<string> {
    return this.eventTypes(value, previous);
  }

  @Option({ flags: '--into <prefix>', description: 'target key prefix (a sandbox, e.g. sandbox:)' })
  parseInto(value: string): string {
    if (!PREFIX.test(value)) throw this.usageError('--into must be 1-64 characters of letters, digits and :_{}.-');
    return value;
  }

  @Option({ flags: '--yes', description: 'allow appending to the live prefix' })
  parseYes(): boolean {
    return true;
  }

  @Option({ flags: '--dry-run', description: 'only print what would be appended, even with --into' })
  parseDryRun(): boolean {
    return true;
  }

  @Option({ flags: '--limit <n>', description: 'refuse windows with more entries than this (default 10000)' })
  parseLimit(value: string): number {
    return this.integer('--limit', value, 1);
  }

  @Option({ flags: '--json', description: 'print as JSON' })
  parseJson(): boolean {
    return true;
  }
}
