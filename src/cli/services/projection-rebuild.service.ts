import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import {
  isTerminal,
  ProjectionRebuilder,
  reduceJobView,
  viewToHash,
  type JobView,
  type ProjectionDifference,
} from '../../modules/generation';
import { JOB_VIEW_CAS_WRITE } from '../../redis/scripts';
import { decodeEntry } from '../../streams/envelope.codec';
import { REDIS } from '../../streams/redis.provider';
import { StreamKeys } from '../../streams/stream-keys';
import { compareStreamIds, parseEntries } from '../../streams/stream-reply.parser';

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
  private readonly rebuilder: ProjectionRebuilder;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: StreamKeys,
  ) {
    this.rebuilder = new ProjectionRebuilder(redis, keys);
  }

  async rebuild({ dryRun }: { dryRun: boolean }): Promise<RebuildReport> {
    const streams = [this.keys.requestsPriority, this.keys.requests, this.keys.events];
    const cutoffs = await Promise.all(
      streams.map(async (s) => (await this.redis.xrevrange(s, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'),
    );
    const views = await this.rebuilder.replay();
    // Order matters: revs first, then the events appended since the replay began. Any event the projector
    // applied before a rev was read was appended before it, so the fold below includes it; any later change
    // moves the rev and the write skips that view.
    const revs = await this.revs([...views.keys()]);
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
      const rev = revs.get(jobId) ?? '';
      const fields = Object.entries({ ...viewToHash(view), rev: String(Number(rev || 0) + 1) }).flat();
      // The projector's own compare-and-set: a view a live projector changed meanwhile is left to it.
      const written = await JOB_VIEW_CAS_WRITE.run(
        this.redis,
        [this.keys.view(jobId)],
        [rev, String(isTerminal(view.status) ? ttl : 0), ...fields],
      );
      (written === 1 ? report.written : report.skippedConcurrent).push(jobId);
    }
    return report;
  }

  /** Events appended after the replay started (the projector may have applied them already): fold them in too. */
  private async foldAppendedSince(views: Map<string, JobView>, streams: string[], cutoffs: string[]): Promise<void> {
    const appended: { id: string; envelope: Parameters<typeof reduceJobView>[1] }[] = [];
    for (const [i, stream] of streams.entries()) {
      let start = `(${cutoffs[i]}`;
      for (let read = 0; read < MAX_TAIL_ENTRIES;) {
        const entries = parseEntries(await this.redis.xrange(stream, start, '+', 'COUNT', TAIL_PAGE));
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

  private async revs(jobIds: string[]): Promise<Map<string, string>> {
    const revs = new Map<string, string>();
    for (let i = 0; i < jobIds.length; i += TAIL_PAGE) {
      const batch = jobIds.slice(i, i + TAIL_PAGE);
      const pipeline = this.redis.pipeline();
      for (const jobId of batch) pipeline.hget(this.keys.view(jobId), 'rev');
      ((await pipeline.exec()) ?? []).forEach(([err, value], n) => {
        revs.set(batch[n], err ? '' : ((value as string | null) ?? ''));
      });
    }
    return revs;
  }
}
