import { Command, Option } from 'nest-commander';
import {
  PoolCapabilityStore,
  summarizeCapabilities,
  type CapabilitySummary,
  type InstanceCapabilityAdvert,
} from '../../modules/capabilities';
import { JobLedger, type QueueBacklog } from '../../modules/generation';
import { StreamStatsReader, type StreamsSnapshot } from '../../modules/operations';
import { CliOutput } from '../cli-io';
import { formatDuration, streamIdAgeMs } from '../format.util';
import { formatTable } from '../text-table';
import { CliCommand } from './cli-command';

/** Accounts listed under "Deepest backlogs". */
const BACKLOGS_SHOWN = 5;

interface InstanceRow {
  instance: InstanceCapabilityAdvert['instanceId'];
  state: InstanceCapabilityAdvert['state'];
  live: boolean;
  capabilities: CapabilitySummary | null;
}

@Command({
  name: 'stats',
  description:
    'Per stream and group: length, lag, pending, oldest pending, consumers with idle time; DLQ size, queue, GPU workers, ComfyUI instances and what they can run',
})
export class StatsCommand extends CliCommand {
  constructor(
    private readonly reader: StreamStatsReader,
    private readonly out: CliOutput,
    private readonly capabilities: PoolCapabilityStore,
    private readonly ledger: JobLedger,
  ) {
    super();
  }

  async run(_args: string[], options: { json?: boolean }): Promise<void> {
    const [snapshot, instances, backlogs] = await Promise.all([
      this.reader.snapshot({ consumers: true }),
      this.capabilities.all(),
      this.ledger.deepestBacklogs(BACKLOGS_SHOWN),
    ]);
    const rows = instances
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId))
      .map((i) => ({
        instance: i.instanceId,
        state: i.state,
        live: i.expiresAt > snapshot.at,
        capabilities: i.capabilities ? summarizeCapabilities(i.capabilities) : null,
      }));
    if (options.json) this.out.json({ ...snapshot, backlogs, instances: rows });
    else {
      this.print(snapshot);
      this.printBacklogs(backlogs);
      this.printInstances(rows);
    }
  }

  /** Who holds the queue: the accounts of the fair queue with the most queued jobs (docs/fair-queue.md). */
  private printBacklogs(backlogs: QueueBacklog[]): void {
    if (backlogs.length === 0) return;
    this.out.line('Deepest backlogs (fair queue accounts):');
    const rows = formatTable(backlogs, [
      { header: 'account', value: (b) => b.account },
      { header: 'queued', value: (b) => String(b.queued), align: 'right' },
      { header: 'next at', value: (b) => `#${b.nextPosition}`, align: 'right' },
    ]);
    for (const line of rows) this.out.line(`  ${line}`);
  }

  /** What each ComfyUI instance can run, as the gpu processes last published it (gpu:capabilities). */
  private printInstances(rows: InstanceRow[]): void {
    this.out.line();
    this.out.line(`ComfyUI instances: ${rows.filter((r) => r.live).length} published`);
    if (rows.length === 0) return;
    const files = (r: InstanceRow, input: string): string => {
      return r.capabilities ? (r.capabilities.models[input] ?? []).join(', ') || '(none)' : '?';
    };
    const table = formatTable(rows, [
      { header: 'instance', value: (r) => r.instance },
      { header: 'state', value: (r) => (r.live ? r.state : 'expired') },
      { header: 'nodes', value: (r) => (r.capabilities ? String(r.capabilities.nodeClasses) : '?'), align: 'right' },
      { header: 'checkpoints', value: (r) => files(r, 'ckpt_name') },
      { header: 'diffusion models', value: (r) => files(r, 'unet_name') },
      { header: 'loras', value: (r) => files(r, 'lora_name') },
    ]);
    for (const line of table) this.out.line(`  ${line}`);
  }

  private print(s: StreamsSnapshot): void {
    const out = this.out;
    out.line(`prefix ${s.prefix}  at ${new Date(s.at).toISOString()}`);
    out.line();
    out.line('Streams');
    const streams = formatTable(s.streams, [
      { header: 'stream', value: (x) => x.name },
      { header: 'length', value: (x) => String(x.length), align: 'right' },
      { header: 'last entry', value: (x) => x.lastId ?? '-' },
      {
        header: 'last append',
        value: (x) => (x.lastId ? `${formatDuration(streamIdAgeMs(x.lastId, s.at))} ago` : '-'),
      },
    ]);
    for (const line of streams) out.line(`  ${line}`);

    const groups = s.streams.flatMap((x) => x.groups.map((g) => ({ stream: x.name, ...g })));
    out.line();
    out.line('Consumer groups');
    if (groups.length === 0) out.line('  (none yet: groups appear when the first consumer of a role starts)');
    else {
      const rows = formatTable(groups, [
        { header: 'stream', value: (g) => g.stream },
        { header: 'group', value: (g) => g.group },
        { header: 'consumers', value: (g) => String(g.consumers), align: 'right' },
        { header: 'lag', value: (g) => (g.lag === null ? '?' : String(g.lag)), align: 'right' },
        { header: 'pending', value: (g) => String(g.pending), align: 'right' },
        {
          header: 'oldest pending',
          value: (g) =>
            g.oldestPending
              ? `${g.oldestPending.id} age ${formatDuration(g.oldestPending.ageMs)}, idle ${formatDuration(g.oldestPending.idleMs)}, ` +
                `${g.oldestPending.deliveries} deliveries, ${g.oldestPending.consumer}`
              : '-',
        },
        { header: 'last delivered', value: (g) => g.lastDeliveredId },
      ]);
      for (const line of rows) out.line(`  ${line}`);
    }

    const consumers = groups.flatMap((g) =>
      (g.consumerList ?? []).map((c) => ({ stream: g.stream, group: g.group, ...c })),
    );
    if (consumers.length > 0) {
      out.line();
      out.line('Consumers');
      const rows = formatTable(consumers, [
        { header: 'stream', value: (c) => c.stream },
        { header: 'group', value: (c) => c.group },
        { header: 'consumer', value: (c) => c.name },
        { header: 'pending', value: (c) => String(c.pending), align: 'right' },
        { header: 'idle', value: (c) => formatDuration(c.idleMs), align: 'right' },
        {
          header: 'inactive',
          value: (c) => (c.inactiveMs === undefined ? '-' : formatDuration(c.inactiveMs)),
          align: 'right',
        },
      ]);
      for (const line of rows) out.line(`  ${line}`);
    }

    out.line();
    out.line(
      `DLQ: ${s.dlqSize} entr${s.dlqSize === 1 ? 'y' : 'ies'}${s.dlqSize > 0 ? '  (npm run cli -- dlq list)' : ''}`,
    );
    out.line(
      `Queue: ${s.queueLength} job(s) waiting for a worker${s.draining ? '  — DRAINING: new jobs are refused' : ''}`,
    );
    const live = s.gpuWorkers.filter((w) => w.live);
    out.line(
      `GPU workers: ${live.length} live (${live.reduce((n, w) => n + w.slots, 0)} slots)` +
        (s.gpuWorkers.length > live.length ? `, ${s.gpuWorkers.length - live.length} expired` : ''),
    );
    if (s.gpuWorkers.length > 0) {
      const rows = formatTable(s.gpuWorkers, [
        { header: 'worker', value: (w) => w.worker },
        { header: 'slots', value: (w) => String(w.slots), align: 'right' },
        { header: 'state', value: (w) => (w.live ? 'live' : 'expired') },
        {
          header: 'advert',
          value: (w) =>
            w.live
              ? `expires in ${formatDuration(w.expiresAt - s.at)}`
              : `expired ${formatDuration(s.at - w.expiresAt)} ago`,
        },
      ]);
      for (const line of rows) out.line(`  ${line}`);
    }
  }

  @Option({ flags: '--json', description: 'print the snapshot as JSON' })
  parseJson(): boolean {
    return true;
  }
}
