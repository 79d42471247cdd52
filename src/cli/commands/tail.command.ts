import { Command, Option } from 'nest-commander';
import { summarize } from '../../modules/generation';
import { parseDlqEntry } from '../../streams/dead-letter.writer';
import { decodeEntry } from '../../streams/envelope.codec';
import { StreamKeys } from '../../streams/stream-keys';
import type { RawEntry } from '../../streams/stream-reply.parser';
import { StreamReader } from '../../streams/stream.reader';
import { CliOutput } from '../cli-io';
import { streamIdTime } from '../format.util';
import { CliCommand } from './cli-command';

const STREAMS = ['requests', 'events', 'progress', 'dlq'] as const;
type TailStream = (typeof STREAMS)[number];

interface TailOptions {
  stream?: TailStream;
  type?: Set<string>;
  job?: string;
  count?: number;
  timeoutMs?: number;
  json?: boolean;
}

/** One printed line of `tail`, also its --json shape. */
interface TailLine {
  stream: string;
  id: string;
  at: string;
  type: string;
  jobId?: string;
  actor?: string;
  detail: string;
}

@Command({
  name: 'tail',
  description: 'Follow a stream live from its current end, until Ctrl-C (or --count / --timeout-ms)',
})
export class TailCommand extends CliCommand {
  constructor(
    private readonly reader: StreamReader,
    private readonly keys: StreamKeys,
    private readonly out: CliOutput,
  ) {
    super();
  }

  async run(_args: string[], options: TailOptions): Promise<void> {
    const which = options.stream ?? 'events';
    // Every shard's (STREAM_SHARDS), shown with the shard's tag (`{3}:jobs:events`).
    const streams = this.keys.shards.flatMap(
      (k) =>
        ({
          requests: [k.requestsPriority, k.requests],
          events: [k.events],
          progress: [k.progress],
          dlq: [k.dlq],
        })[which],
    );
    const dlqs = new Set(this.keys.shards.map((k) => k.dlq));
    const signals = [this.out.signal];
    if (options.timeoutMs !== undefined) signals.push(AbortSignal.timeout(options.timeoutMs));
    const stop = new AbortController();
    const signal = AbortSignal.any([...signals, stop.signal]);
    if (!options.json) this.out.warn(`following ${streams.join(', ')} (Ctrl-C to stop)`);
    let shown = 0;
    for await (const { stream, entry } of this.reader.follow(streams, signal)) {
      const line = dlqs.has(stream) ? this.dlqLine(stream, entry) : this.eventLine(stream, entry);
      if (options.type && !options.type.has(line.type)) continue;
      if (options.job && line.jobId !== options.job) continue;
      if (options.json) this.out.jsonLine(line);
      else
        this.out.line(`${line.at}  ${line.stream}  ${line.id}  ${line.type}  job=${line.jobId ?? '-'}  ${line.detail}`);
      shown++;
      if (options.count !== undefined && shown >= options.count) stop.abort();
    }
  }

  private eventLine(stream: string, entry: RawEntry): TailLine {
    const base = { stream: stream.slice(this.keys.basePrefix.length), id: entry.id, at: streamIdTime(entry.id) };
    const decoded = entry.fields ? decodeEntry(entry.fields) : undefined;
    if (!decoded?.ok) return { ...base, type: 'malformed', detail: decoded ? decoded.reason : 'entry deleted' };
    const e = decoded.envelope;
    return {
      ...base,
      at: e.occurredAt,
      type: e.type,
      jobId: e.jobId,
      actor: e.actor,
      detail: `${e.actor}  ${summarize(e)}`,
    };
  }

  private dlqLine(stream: string, entry: RawEntry): TailLine {
    const d = parseDlqEntry(entry.id, entry.fields ?? []);
    return {
      stream: stream.slice(this.keys.basePrefix.length),
      id: entry.id,
      at: d.at || streamIdTime(entry.id),
      type: d.type ?? 'malformed',
      jobId: d.jobId,
      detail: `group=${d.group} entry=${d.stream.slice(this.keys.basePrefix.length)}/${d.entryId} deliveries=${d.deliveries} reason=${d.reason}`,
    };
  }

  @Option({ flags: '--stream <name>', description: 'requests, events, progress or dlq (default events)' })
  parseStream(value: string): TailStream {
    // nest-commander's argParser replaces commander's choices check, so the check is here.
    if (!(STREAMS as readonly string[]).includes(value)) {
      throw this.usageError(`--stream must be one of ${STREAMS.join(', ')}, got "${value}"`);
    }
    return value as TailStream;
  }

  @Option({ flags: '--type <types>', description: 'only these event types (comma list, repeatable)' })
  parseType(value: string, previous?: Set<string>): Set<string> {
    return this.eventTypes(value, previous);
  }

  @Option({ flags: '--job <id>', description: 'only events of this job' })
  parseJob(value: string): string {
    return this.jobId(value);
  }

  @Option({ flags: '--count <n>', description: 'stop after n matching entries' })
  parseCount(value: string): number {
    return this.integer('--count', value, 1);
  }

  @Option({ flags: '--timeout-ms <ms>', description: 'stop after this long' })
  parseTimeout(value: string): number {
    return this.integer('--timeout-ms', value, 1);
  }

  @Option({ flags: '--json', description: 'one JSON object per line' })
  parseJson(): boolean {
    return true;
  }
}
