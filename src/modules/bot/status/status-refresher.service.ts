import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { sleep } from '../../../common/sleep.util';
import { errorMessage } from '../../../streams/stream-errors';
import { StreamTail, type TailedEvent } from '../../../streams/stream-tail';
import { ChatBlocklistStore } from '../telegram/chat-blocklist.store';
import { BotJobStore } from './bot-job.store';
import { JobStateReader } from './job-state.reader';
import { StatusMessengerService } from './status-messenger.service';

/** Every live job is looked at this often (queue positions move without any event of the job itself). */
const FULL_PASS_INTERVAL_MS = 1_000;
/** Jobs with news (progress, start) are looked at again no sooner than this. */
const MIN_PASS_GAP_MS = 200;
/** A replica that stops renewing (dead) loses its jobs to another within this. */
const OWNER_TTL_MS = 10_000;
const MAX_JOBS_PER_PASS = 500;
/** Refreshes run independently (one slow create never holds up the others), at most this many at once. */
const MAX_CONCURRENT_REFRESHES = 32;
/** Live entries older than this are leftovers of jobs whose final event never reached us: drop them. */
const STALE_LIVE_MS = 2 * 24 * 3600 * 1000;
const NEWS_TYPES = new Set(['job.progress', 'job.accepted', 'job.started', 'job.failed', 'job.cancel-requested']);

/**
 * Keeps live status messages current: creates them, shows queue position/ETA and then progress. Progress is
 * sampled from the job's latest state (not replayed tick by tick), so ticks that arrive faster than the edit
 * budget allows are skipped, never queued.
 *
 * Exactly one replica refreshes a given job: the holder of its sticky owner lease (`bot:job:<id>:owner`,
 * renewed on every pass, taken over by another replica within OWNER_TTL_MS if the holder dies). The progress
 * stream is read by every replica (XREAD, no group), so ticks only wake the owner early; the edit itself still
 * runs under the job's edit mutex (see StatusMessengerService), which orders it against the final edit that the `bot`
 * consumer group writes from whichever replica handles the terminal event.
 */
@Injectable()
export class StatusRefresherService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly owned = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private pending = new Set<string>();
  private readonly stop = new AbortController();
  private wake: () => void = () => undefined;
  private loop?: Promise<void>;
  private unsubscribe?: () => void;

  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    private readonly store: BotJobStore,
    private readonly reader: JobStateReader,
    private readonly messenger: StatusMessengerService,
    private readonly blocklist: ChatBlocklistStore,
    private readonly tail: StreamTail,
  ) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = this.tail.subscribe((event) => this.onTailEvent(event));
    this.loop = this.run();
  }

  async onModuleDestroy(): Promise<void> {
    this.stop.abort();
    this.wake();
    this.unsubscribe?.();
    await this.loop;
    await Promise.allSettled([...this.running.values()]);
    await Promise.allSettled([...this.owned].map((jobId) => this.store.releaseRefresh(jobId)));
  }

  /** Look at this job now (a new job, a cancel press) instead of at the next pass. */
  kick(jobId: string): void {
    this.pending.add(jobId);
    this.wake();
  }

  private onTailEvent(event: TailedEvent): void {
    if (NEWS_TYPES.has(event.envelope.type) && this.owned.has(event.envelope.jobId)) this.kick(event.envelope.jobId);
  }

  private async run(): Promise<void> {
    let lastFullPass = 0;
    while (!this.stop.signal.aborted) {
      const full = Date.now() - lastFullPass >= FULL_PASS_INTERVAL_MS;
      const jobs = this.pending;
      this.pending = new Set();
      try {
        if (full) {
          lastFullPass = Date.now();
          await this.store.dropLiveOlderThan(Date.now() - STALE_LIVE_MS);
          const live = await this.store.liveJobs(MAX_JOBS_PER_PASS);
          for (const jobId of live) jobs.add(jobId);
          if (live.length < MAX_JOBS_PER_PASS) this.forgetEnded(jobs);
        }
        for (const jobId of jobs) this.schedule(jobId);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'status refresh pass failed');
      }
      await sleep(MIN_PASS_GAP_MS, this.stop.signal);
      await this.waitForNews(Math.max(0, lastFullPass + FULL_PASS_INTERVAL_MS - Date.now()));
    }
  }

  /** Jobs that ended elsewhere (their final event handled by another replica) are no longer ours to watch. */
  private forgetEnded(live: ReadonlySet<string>): void {
    for (const jobId of this.owned) {
      if (!live.has(jobId)) this.owned.delete(jobId);
    }
  }

  /** Starts a job's refresh unless one is running (its result will be fresh enough) or too many are. */
  private schedule(jobId: string): void {
    if (this.running.has(jobId) || this.stop.signal.aborted) return;
    if (this.running.size >= MAX_CONCURRENT_REFRESHES) {
      this.pending.add(jobId);
      return;
    }
    const refresh = this.refresh(jobId)
      .catch((err: unknown) => this.log.warn({ jobId, err: errorMessage(err) }, 'status refresh failed'))
      .finally(() => this.running.delete(jobId));
    this.running.set(jobId, refresh);
  }

  private waitForNews(ms: number): Promise<void> {
    if (this.pending.size > 0 || this.stop.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.wake = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private async refresh(jobId: string): Promise<void> {
    if (!(await this.store.takeRefresh(jobId, OWNER_TTL_MS))) {
      this.owned.delete(jobId);
      return;
    }
    this.owned.add(jobId);
    const record = await this.store.get(jobId);
    if (!record || record.phase !== 'live') {
      this.owned.delete(jobId);
      await this.store.dropLive(jobId);
      await this.store.releaseRefresh(jobId);
      return;
    }
    if (await this.blocklist.isBlocked(record.chatId)) return;
    const state = await this.reader.read(jobId, record.cancelRequested === true);
    // The final state is the `bot` group's to show (durably, with the result): nothing to do here.
    if (state.kind === 'final') return;
    await this.messenger.showLive(record, state, this.stop.signal);
  }
}
