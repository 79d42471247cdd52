import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import {
  isTerminal,
  JobViewRepository,
  ProjectionRebuilder,
  reduceJobView,
  type JobView,
  type ProjectionDifference,
} from '../../modules/generation';
import { decodeEntry } from '../../streams/envelope.codec';
import { StreamKeys } from '../../streams/stream-keys';
import { compareStreamIds } from '../../streams/stream-reply.parser';
import { StreamReader } from '../../streams/stream.reader';

const TAIL_PAGE = 1_000;
const MAX_TAIL_ENTRIES = 100_000;

export interface RebuildReport {
  jobs: number;
  differences: ProjectionDifference[];
  /** Jobs whose view differs from the replay. */
  differingJobs: string[];
  written: string[];
  /** Changed by the projector between comparison and write: left alone, run the rebuild again. */
  skippedConcurrent: string[];
  dryRun: boolean;
}

/**
 * `cli projections rebuild`: replays the streams with ProjectionRebuilder, reports how `jobs:view:*` differs,
 * and (unless dry-run) writes the replayed views back. Safe beside a running projector: events appended while
 * the replay ran are folded in before comparing, and each write is conditional on the view's `rev`, so a view
 * the projector updates meanwhile is skipped (and reported) rather than overwritten.
 */
@Injectable()
export class ProjectionRebuildService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
    private readonly rebuilder: ProjectionRebuilder,
    private readonly views: JobViewRepository,
    private readonly streams: StreamReader,
  ) {}

  async rebuild({ dryRun }: { dryRun: boolean }): Promise<RebuildReport> {
    const streams = this.keys.shards.flatMap((k) => [k.requestsPriority, k.requests, k.events]);
    const cutoffs = await Promise.all(streams.map((s) => this.streams.lastId(s)));
    const views = await this.rebuilder.replay();
    // Order matters: revs first, then the events appended since the replay began. Any event the projector
    // applied before a rev was read was appended before it, so the fold below includes it; any later change
    // moves the rev and the write skips that view.
    const revs = await this.views.revs([...views.keys()]);
    await this.foldAppendedSince(views, streams, cutoffs);
    const differences = await this.rebuilder.diff(views);
    const differingJobs = [...new Set(differences.map((d) => d.jobId))];
    const report: RebuildReport = {
      jobs: views.size,
      differences,
      differingJobs,
      written: [],
      skippedConcurrent: [],
      dryRun,
    };
    if (dryRun || differingJobs.length === 0) return report;

    const ttl = Math.ceil(this.config.retentionMs / 1000);
    for (const jobId of differingJobs) {
      const view = views.get(jobId)!;
      // The projector's own compare-and-set: a view a live projector changed meanwhile is left to it.
      const written = await this.views.replaceIfUnchanged(
        jobId,
        revs.get(jobId) ?? '',
        view,
        isTerminal(view.status) ? ttl : 0,
      );
      (written ? report.written : report.skippedConcurrent).push(jobId);
    }
    return report;
  }

  /** Events appended after the replay started (the projector may have applied them already): fold them in too. */
  private async foldAppendedSince(views: Map<string, JobView>, streams: string[], cutoffs: string[]): Promise<void> {
    const appended: { id: string; envelope: Parameters<typeof reduceJobView>[1] }[] = [];
    for (const [i, stream] of streams.entries()) {
      let start = `(${cutoffs[i]}`;
      for (let read = 0; read < MAX_TAIL_ENTRIES;) {
        const entries = await this.streams.range(stream, start, '+', TAIL_PAGE);
        for (const entry of entries) {
          const decoded = entry.fields ? decodeEntry(entry.fields) : undefined;
          if (decoded?.ok) appended.push({ id: entry.id, envelope: decoded.envelope });
        }
        read += entries.length;
        if (entries.length < TAIL_PAGE) break;
        start = `(${entries[entries.length - 1].id}`;
      }
    }
    appended.sort((a, b) => compareStreamIds(a.id, b.id));
    // The reducer is idempotent and order-tolerant: re-applying an event the replay already saw changes nothing.
    for (const { envelope } of appended) views.set(envelope.jobId, reduceJobView(views.get(envelope.jobId), envelope));
  }
}
