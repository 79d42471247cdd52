import { readFileSync } from 'node:fs';
import type Redis from 'ioredis';
import { hashToView } from '../../src/modules/generation/projection/job-view.codec';
import type { JobView } from '../../src/modules/generation/projection/job-view';
import { parseDlqEntry } from '../../src/streams/dead-letter.writer';
import { decodeEntry } from '../../src/streams/envelope.codec';
import type { AnyJobEnvelope, JobEnvelope } from '../../src/streams/job-event.types';
import type { StreamKeys } from '../../src/streams/stream-keys';
import type { FakeTelegram } from '../../test/support/fake-telegram/fake-telegram.server';
import type { ChaosOptions, FaultLog } from './chaos-run';
import type { ApiOutcome, PlannedJob, TelegramOutcome } from './load';
import type { InjectedEntry } from './poison';
import type { ServiceProcess, UnexpectedExit } from './service-process';
import type { WatchedSimulator } from './watched-simulator';
import type { BalancerStats } from './webhook-balancer';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const GROUPS_BY_STREAM = { 'jobs:requests': ['gpu', 'projector'], 'jobs:events': ['bot', 'projector'] } as const;
const FINAL_STATUS_TEXT = /^(✅|❌|🚫)/u;

export interface DrainState {
  unfinished: number;
  pending: Record<string, number>;
  lag: Record<string, number>;
  done: boolean;
}

/** Whether every job has ended and every group has read and acknowledged everything. */
export async function drainProgress(redis: Redis, keys: StreamKeys): Promise<DrainState> {
  const ids = await requestedJobIds(redis, keys);
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(keys.view(id), 'status');
  const statuses = ((await pipeline.exec()) ?? []).map(([, v]) => v as string | null);
  const unfinished = statuses.filter((s) => !s || !TERMINAL.has(s)).length;
  const { pending, lag } = await groupState(redis, keys);
  const done =
    unfinished === 0 && Object.values(pending).every((n) => n === 0) && Object.values(lag).every((n) => n === 0);
  return { unfinished, pending, lag, done };
}

async function requestedJobIds(redis: Redis, keys: StreamKeys): Promise<string[]> {
  const ids: string[] = [];
  for (const [, fields] of await redis.xrange(keys.requests, '-', '+')) {
    const decoded = decodeEntry(fields);
    if (decoded.ok && decoded.envelope.type === 'job.requested') ids.push(decoded.envelope.jobId);
  }
  return ids;
}

async function groupState(
  redis: Redis,
  keys: StreamKeys,
): Promise<{ pending: Record<string, number>; lag: Record<string, number> }> {
  const pending: Record<string, number> = {};
  const lag: Record<string, number> = {};
  for (const [short, groups] of Object.entries(GROUPS_BY_STREAM)) {
    const stream = `${keys.prefix}${short}`;
    const info = (await redis.call('XINFO', 'GROUPS', stream).catch(() => [])) as unknown[][];
    for (const row of info) {
      const map = new Map<string, unknown>();
      for (let i = 0; i + 1 < row.length; i += 2) map.set(String(row[i]), row[i + 1]);
      const name = String(map.get('name'));
      if (!(groups as readonly string[]).includes(name)) continue;
      pending[`${name}@${short}`] = Number(map.get('pending') ?? 0);
      const l = map.get('lag');
      lag[`${name}@${short}`] = l === null || l === undefined ? 0 : Number(l);
    }
  }
  return { pending, lag };
}

export interface VerifyInput {
  redis: Redis;
  keys: StreamKeys;
  options: ChaosOptions;
  plan: readonly PlannedJob[];
  apiOutcomes: readonly ApiOutcome[];
  telegram: readonly TelegramOutcome[];
  fake: FakeTelegram;
  sims: readonly WatchedSimulator[];
  poison: readonly InjectedEntry[];
  procs: readonly ServiceProcess[];
  unexpectedExits: readonly UnexpectedExit[];
  balancer: BalancerStats;
  redisRestarts: number;
  faults: FaultLog;
  drained: boolean;
  drainMs: number;
  loadMs: number;
  totalMs: number;
  secrets: readonly string[];
}

export interface ChaosReport {
  mode: 'quick' | 'full';
  seed: number;
  finishedAt: string;
  jobsPlanned: number;
  accepted: { total: number; api: number; telegram: number };
  succeeded: number;
  failed: { total: number; byReason: Record<string, number> };
  cancelled: number;
  lost: number;
  lostJobs: string[];
  duplicateChatDeliveries: number;
  rerunsOfFinishedPrompts: number;
  rerunsAfterInstanceCrash: number;
  promptExecutions: number;
  dlq: { entries: number; fromInjectedPoison: number; unexpected: string[]; poisonNotDeadLettered: string[] };
  poison: { injected: number; expectedDeadLetters: number; refusedRequests: number; harmless: number };
  telegram: {
    updates: number;
    replayedUpdates: number;
    jobs: number;
    updatesWithoutJob: number;
    duplicateJobs: number;
    statusMessagesMissing: number;
    duplicateStatusMessages: number;
    statusMessagesNotFinal: number;
    resultsDelivered: number;
    resultsMissing: number;
    resultsForUnsuccessfulJobs: number;
    forgedPresses: number;
    forgedPressesObeyed: number;
  };
  api: { submissions: number; accepted: number; retried: number; refused: string[]; neverAccepted: number };
  processes: { kills: Record<string, number>; starts: Record<string, number>; unexpectedExits: string[] };
  faults: Omit<FaultLog, 'planned'> & { planned: number };
  balancer: BalancerStats;
  /** From the service logs: stream entries claimed from dead consumers, prompts re-attached, watchdog cancels. */
  takeovers: { claimedEntries: number; reattachedPrompts: number; watchdogCancels: number };
  redisRestarts: number;
  secretsInLogs: string[];
  drained: boolean;
  /** Succeeded jobs: time on the worker (claim → completed) and from submit to the final event. */
  jobSeconds: { runP50: number; runP95: number; endToEndP50: number; endToEndP95: number; endToEndMax: number };
  timings: { loadSeconds: number; drainSeconds: number; totalSeconds: number };
  violations: string[];
  details: string[];
}

/** Reads everything back from Redis, the fake Bot API and the simulators, and checks the books. */
export async function verify(input: VerifyInput): Promise<ChaosReport> {
  const { redis, keys, fake } = input;
  const violations: string[] = [];
  /** Evidence for the violations that are counted rather than listed one by one. */
  const details: string[] = [];

  // ---- what the streams say ---------------------------------------------------------------------------------
  const requests = new Map<string, { entryId: string; envelope: JobEnvelope<'job.requested'> }>();
  for (const [entryId, fields] of await redis.xrange(keys.requests, '-', '+')) {
    const decoded = decodeEntry(fields);
    if (decoded.ok && decoded.envelope.type === 'job.requested') {
      requests.set(decoded.envelope.jobId, { entryId, envelope: decoded.envelope });
    }
  }
  const events = new Map<string, AnyJobEnvelope[]>();
  for (const [, fields] of await redis.xrange(keys.events, '-', '+')) {
    const decoded = decodeEntry(fields);
    if (!decoded.ok) continue;
    const list = events.get(decoded.envelope.jobId) ?? [];
    list.push(decoded.envelope);
    events.set(decoded.envelope.jobId, list);
  }
  const views = new Map<string, JobView | undefined>();
  const pipeline = redis.pipeline();
  const ids = [...requests.keys()];
  for (const id of ids) pipeline.hgetall(keys.view(id));
  ((await pipeline.exec()) ?? []).forEach(([, hash], i) =>
    views.set(ids[i]!, hashToView(hash as Record<string, string>)),
  );

  const poisonJobIds = new Set(input.poison.flatMap((p) => (p.expect.kind === 'failed' ? [p.expect.jobId] : [])));
  const loadJobs = ids.filter((id) => !poisonJobIds.has(id));

  // ---- every accepted job ended ------------------------------------------------------------------------------
  const lostJobs: string[] = [];
  let succeeded = 0;
  let cancelled = 0;
  const byReason: Record<string, number> = {};
  for (const id of loadJobs) {
    const view = views.get(id);
    const status = view?.status;
    if (!status || !TERMINAL.has(status)) {
      lostJobs.push(`${id} (${status ?? 'no view'}; events: ${(events.get(id) ?? []).map((e) => e.type).join(',')})`);
      continue;
    }
    if (status === 'succeeded') succeeded++;
    else if (status === 'cancelled') cancelled++;
    else {
      const reason = `${view.error?.code ?? 'unknown'}: ${(view.error?.message ?? '').slice(0, 120)}`;
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    }
    const terminalEvent = (events.get(id) ?? []).some(
      (e) =>
        e.type === 'job.completed' ||
        e.type === 'job.cancelled' ||
        e.type === 'job.dead-lettered' ||
        (e.type === 'job.failed' && !e.payload.willRetry),
    );
    if (!terminalEvent) violations.push(`job ${id} is ${status} in the projection but has no final event`);
  }
  if (lostJobs.length > 0) violations.push(`${lostJobs.length} accepted job(s) never finished (lost)`);
  if (!input.drained) violations.push('the fleet did not drain before the deadline');

  // ---- HTTP clients -----------------------------------------------------------------------------------------
  const apiAccepted = input.apiOutcomes.filter((o) => o.jobId !== undefined);
  const refused = input.apiOutcomes.flatMap((o) => o.refusals.map((r) => `job #${o.n}: ${r}`));
  const neverAccepted = input.apiOutcomes.filter((o) => o.jobId === undefined).length;
  if (refused.length > 0) violations.push(`${refused.length} valid HTTP submission(s) refused`);
  if (neverAccepted > 0) violations.push(`${neverAccepted} HTTP submission(s) never accepted`);
  for (const o of apiAccepted) {
    if (!requests.has(o.jobId!)) violations.push(`HTTP job ${o.jobId} was answered 202 but is not in jobs:requests`);
  }
  const apiIds = new Set(apiAccepted.map((o) => o.jobId));
  const apiJobsInStream = loadJobs.filter((id) => requests.get(id)!.envelope.payload.source === 'api');
  const orphans = apiJobsInStream.filter((id) => !apiIds.has(id));
  if (orphans.length > 0) violations.push(`${orphans.length} HTTP job(s) in the stream that no client was told about`);

  // ---- Telegram users ---------------------------------------------------------------------------------------
  const tgJobs = new Map<string, string[]>();
  for (const id of loadJobs) {
    const origin = requests.get(id)!.envelope.payload.telegram;
    if (!origin?.updateId) continue;
    const key = `${origin.chatId}:${origin.updateId}`;
    tgJobs.set(key, [...(tgJobs.get(key) ?? []), id]);
  }
  const tg = {
    updates: input.telegram.length,
    replayedUpdates: input.telegram.reduce((n, o) => n + o.replays, 0),
    jobs: 0,
    updatesWithoutJob: 0,
    duplicateJobs: 0,
    statusMessagesMissing: 0,
    duplicateStatusMessages: 0,
    statusMessagesNotFinal: 0,
    resultsDelivered: 0,
    resultsMissing: 0,
    resultsForUnsuccessfulJobs: 0,
    forgedPresses: 0,
    forgedPressesObeyed: 0,
  };
  let duplicateChatDeliveries = 0;
  for (const outcome of input.telegram) {
    const jobs = tgJobs.get(`${outcome.chatId}:${outcome.update.updateId}`) ?? [];
    const label = `telegram update ${outcome.update.updateId} (job #${outcome.n})`;
    if (jobs.length === 0) {
      tg.updatesWithoutJob++;
      violations.push(`${label} produced no job`);
      continue;
    }
    tg.jobs++;
    if (jobs.length > 1) {
      tg.duplicateJobs++;
      violations.push(`${label} produced ${jobs.length} jobs`);
    }
    const statuses = fake
      .botMessages(outcome.chatId)
      .filter((m) => m.kind === 'text' && m.replyTo === outcome.update.messageId);
    // A job that succeeded before its status message was due may have none: the picture is the answer. A failure
    // or a cancellation must always be said.
    const allSucceeded = jobs.every((j) => views.get(j)?.status === 'succeeded');
    if (statuses.length === 0 && !allSucceeded) {
      tg.statusMessagesMissing++;
      details.push(
        `${label}: no status message (jobs ${jobs.join(', ')}, ${jobs.map((j) => views.get(j)?.status).join(',')})`,
      );
    }
    if (statuses.length > 1) {
      tg.duplicateStatusMessages++;
      details.push(`${label}: ${statuses.length} status messages`);
    }
    if (statuses.length > 0 && !statuses.some((m) => FINAL_STATUS_TEXT.test(m.text ?? ''))) {
      tg.statusMessagesNotFinal++;
      violations.push(`${label}: its status message still says "${(statuses[0]!.text ?? '').slice(0, 60)}"`);
    }
    for (const id of jobs) {
      const photos = fake.photos(outcome.chatId).filter((m) => m.file?.filename.startsWith(id.slice(0, 8)));
      const status = views.get(id)?.status;
      if (status === 'succeeded') {
        if (photos.length === 0) {
          tg.resultsMissing++;
          violations.push(`${label}: job ${id} succeeded but its picture never reached the chat`);
        } else tg.resultsDelivered++;
        if (photos.length > 1) {
          duplicateChatDeliveries += photos.length - 1;
          violations.push(`${label}: job ${id}'s picture was sent ${photos.length} times`);
        }
      } else if (photos.length > 0) {
        tg.resultsForUnsuccessfulJobs++;
        violations.push(`${label}: job ${id} is ${status ?? 'unknown'} but a picture was sent`);
      }
      if (outcome.forged) {
        tg.forgedPresses++;
        const obeyed = (events.get(id) ?? []).some(
          (e) => e.type === 'job.cancel-requested' && e.payload.by === `tg:${outcome.forged!.by}`,
        );
        if (obeyed) {
          tg.forgedPressesObeyed++;
          violations.push(`${label}: user ${outcome.forged.by} cancelled someone else's job with its button`);
        }
      }
    }
  }
  if (tg.statusMessagesMissing > 0)
    violations.push(`${tg.statusMessagesMissing} Telegram job(s) without a status message`);
  if (tg.duplicateStatusMessages > 0) {
    violations.push(`${tg.duplicateStatusMessages} Telegram job(s) with more than one status message`);
  }

  // ---- ComfyUI: no finished prompt ran again ------------------------------------------------------------------
  const reruns = input.sims.flatMap((s) => s.reruns);
  const badReruns = reruns.filter((r) => !r.afterCrash);
  for (const r of badReruns) {
    violations.push(`prompt ${r.promptId} ran again on ${r.instance} ${r.rerunAt - r.finishedAt} ms after it finished`);
  }
  const promptExecutions = input.sims.reduce((n, s) => n + s.stats().executions, 0);

  // ---- DLQ: only the injected poison, all of it, once per group -------------------------------------------------
  const dlqEntries = (await redis.xrange(keys.dlq, '-', '+')).map(([id, fields]) => parseDlqEntry(id, fields));
  const injectedByKey = new Map(input.poison.map((p) => [`${p.stream}|${p.id}`, p]));
  const unexpected: string[] = [];
  const deadLettered = new Map<string, string[]>();
  for (const entry of dlqEntries) {
    const key = `${entry.stream}|${entry.entryId}`;
    if (!injectedByKey.has(key)) {
      unexpected.push(
        `${entry.group} on ${entry.stream.slice(keys.prefix.length)} ${entry.entryId} job ${entry.jobId ?? '-'}: ${entry.reason.slice(0, 160)}`,
      );
    }
    deadLettered.set(key, [...(deadLettered.get(key) ?? []), entry.group]);
  }
  if (unexpected.length > 0) violations.push(`${unexpected.length} DLQ entr(ies) that are not injected poison`);
  const poisonNotDeadLettered: string[] = [];
  for (const p of input.poison) {
    const groups = deadLettered.get(`${p.stream}|${p.id}`) ?? [];
    if (p.expect.kind === 'dlq') {
      const short = p.stream.slice(keys.prefix.length) as keyof typeof GROUPS_BY_STREAM;
      for (const group of GROUPS_BY_STREAM[short]) {
        const n = groups.filter((g) => g === group).length;
        if (n !== 1) poisonNotDeadLettered.push(`${p.label}: dead-lettered ${n}× by ${group}`);
      }
    } else if (p.expect.kind === 'failed') {
      const view = views.get(p.expect.jobId);
      if (view?.status !== 'failed' || view.error?.code !== p.expect.code) {
        poisonNotDeadLettered.push(
          `${p.label}: expected failed/${p.expect.code}, got ${view?.status ?? 'no view'}/${view?.error?.code ?? '-'}`,
        );
      }
      if (groups.length > 0) poisonNotDeadLettered.push(`${p.label}: dead-lettered instead of failed`);
    }
  }
  if (poisonNotDeadLettered.length > 0)
    violations.push(`${poisonNotDeadLettered.length} poison entr(ies) not handled as expected`);

  // ---- processes, load balancer, secrets ---------------------------------------------------------------------------
  const unexpectedExits = input.unexpectedExits.map(
    (e) =>
      `${e.name}: code ${e.code} signal ${e.signal}: ${e.stderrTail.split('\n').slice(-3).join(' | ').slice(0, 300)}`,
  );
  if (unexpectedExits.length > 0) violations.push(`${unexpectedExits.length} process(es) exited by themselves`);
  if (input.balancer.gaveUp > 0) violations.push(`${input.balancer.gaveUp} webhook call(s) no bot replica answered`);
  const secretsInLogs: string[] = [];
  const takeovers = { claimedEntries: 0, reattachedPrompts: 0, watchdogCancels: 0 };
  for (const proc of input.procs) {
    let text = '';
    try {
      text = readFileSync(proc.logPath, 'utf8');
    } catch {
      continue;
    }
    // Evidence that the faults hit work in flight: entries claimed from dead consumers, prompts re-attached.
    for (const m of text.matchAll(/"entries":(\d+)[^\n]*"msg":"claimed idle entries"/g))
      takeovers.claimedEntries += Number(m[1]);
    takeovers.reattachedPrompts += (text.match(/"msg":"re-attaching to the earlier prompt"/g) ?? []).length;
    takeovers.watchdogCancels += (text.match(/No progress from ComfyUI for/g) ?? []).length;
    for (const secret of input.secrets) {
      if (secret.length >= 8 && text.includes(secret))
        secretsInLogs.push(`${proc.name}.log contains a secret (${secret.slice(0, 4)}…)`);
    }
  }
  if (secretsInLogs.length > 0) violations.push(`${secretsInLogs.length} secret(s) found in process logs`);
  if (duplicateChatDeliveries > 0) violations.push(`${duplicateChatDeliveries} duplicate chat deliveries`);

  const succeededViews = loadJobs.map((id) => views.get(id)).filter((v) => v?.status === 'succeeded') as JobView[];
  const endToEnd = succeededViews
    .map((v) => Date.parse(v.finishedAt ?? '') - Date.parse(v.createdAt ?? ''))
    .filter((n) => Number.isFinite(n));
  const runs = succeededViews.map((v) => v.runMs ?? NaN).filter((n) => Number.isFinite(n));

  const { planned, ...faultRest } = input.faults;
  return {
    mode: input.options.mode,
    seed: input.options.seed,
    finishedAt: new Date().toISOString(),
    jobsPlanned: input.plan.length,
    accepted: { total: apiAccepted.length + tg.jobs, api: apiAccepted.length, telegram: tg.jobs },
    succeeded,
    failed: { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason },
    cancelled,
    lost: lostJobs.length,
    lostJobs: lostJobs.slice(0, 20),
    duplicateChatDeliveries,
    rerunsOfFinishedPrompts: badReruns.length,
    rerunsAfterInstanceCrash: reruns.length - badReruns.length,
    promptExecutions,
    dlq: {
      entries: dlqEntries.length,
      fromInjectedPoison: dlqEntries.length - unexpected.length,
      unexpected: unexpected.slice(0, 20),
      poisonNotDeadLettered,
    },
    poison: {
      injected: input.poison.length,
      expectedDeadLetters: input.poison.filter((p) => p.expect.kind === 'dlq').length * 2,
      refusedRequests: input.poison.filter((p) => p.expect.kind === 'failed').length,
      harmless: input.poison.filter((p) => p.expect.kind === 'harmless').length,
    },
    telegram: tg,
    api: {
      submissions: input.apiOutcomes.length,
      accepted: apiAccepted.length,
      retried: input.apiOutcomes.filter((o) => o.attempts > 1).length,
      refused: refused.slice(0, 20),
      neverAccepted,
    },
    processes: {
      kills: Object.fromEntries(input.procs.map((p) => [p.name, p.kills])),
      starts: Object.fromEntries(input.procs.map((p) => [p.name, p.starts])),
      unexpectedExits,
    },
    faults: { ...faultRest, planned: planned.length },
    balancer: input.balancer,
    takeovers,
    redisRestarts: input.redisRestarts,
    secretsInLogs,
    drained: input.drained,
    jobSeconds: {
      runP50: round1(percentile(runs, 0.5) / 1000),
      runP95: round1(percentile(runs, 0.95) / 1000),
      endToEndP50: round1(percentile(endToEnd, 0.5) / 1000),
      endToEndP95: round1(percentile(endToEnd, 0.95) / 1000),
      endToEndMax: round1(percentile(endToEnd, 1) / 1000),
    },
    timings: {
      loadSeconds: round1(input.loadMs / 1000),
      drainSeconds: round1(input.drainMs / 1000),
      totalSeconds: round1(input.totalMs / 1000),
    },
    violations,
    details: details.slice(0, 50),
  };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
