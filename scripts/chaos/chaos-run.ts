import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { StreamKeys } from '../../src/streams/stream-keys';
import { FakeTelegram } from '../../test/support/fake-telegram/fake-telegram.server';
import { CompiledTree, ROOT } from '../lib/compiled-tree';
import { Deadline, sleep, waitFor } from './deadline';
import { describeStep, planFaults, type FaultStep } from './faults';
import { planLoad, submitApi, TelegramCrowd, type ApiOutcome, type PlannedJob } from './load';
import { PoisonInjector } from './poison';
import { freePort, RedisProcess } from './redis-process';
import { Rng } from './rng';
import { ServiceProcess, type ServiceRole, type UnexpectedExit } from './service-process';
import { drainProgress, verify, type ChaosReport } from './verify';
import { WatchedSimulator } from './watched-simulator';
import { WebhookBalancer } from './webhook-balancer';

export interface ChaosOptions {
  mode: 'quick' | 'full';
  seed: number;
  jobs: number;
  windowMs: number;
  deadlineMs: number;
  keep: boolean;
  log: (line: string) => void;
}

export const PREFIX = 'chaos:';
const SECRET = `chaos_webhook-${randomBytes(12).toString('hex')}`;
const API_KEYS = [`chaos-key-a-${randomBytes(12).toString('hex')}`, `chaos-key-b-${randomBytes(12).toString('hex')}`];
const ADMIN_ID = 900_000;
const SIMULATORS = 4;

export interface FaultLog {
  planned: FaultStep[];
  executed: string[];
  skipped: string[];
  kills: Record<string, number>;
  redisRestarts: number;
  simHangsArmed: number;
  simCrashes: number;
  poisonRounds: number;
  telegram429Storms: number;
  telegramReplays: number;
  telegramDoubleDeliveries: number;
  forgedPresses: number;
  ownerCancels: number;
}

/**
 * One chaos run: its own Redis (AOF), four ComfyUI simulators, the fake Bot API behind a webhook load balancer,
 * and the service as separate processes (api, gpu ×3, bot ×2, projector). Jobs arrive from HTTP clients and
 * Telegram users while the fault schedule kills processes, restarts Redis, hangs and crashes ComfyUI, replays
 * updates and appends poison; then everything is left to drain and the books are checked.
 */
export class ChaosRun {
  private readonly tmp = mkdtempSync(join(tmpdir(), 'comfy-relay-chaos-'));
  private readonly deadline: Deadline;
  private readonly rng: Rng;
  private tree?: CompiledTree;
  private readonly redisServer = new RedisProcess(join(this.tmp, 'redis'));
  private redis?: Redis;
  private readonly sims: WatchedSimulator[] = [];
  private fake?: FakeTelegram;
  private balancer?: WebhookBalancer;
  private readonly procs = new Map<string, ServiceProcess>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly unexpectedExits: UnexpectedExit[] = [];
  private ending = false;
  private apiUrl = '';

  constructor(private readonly o: ChaosOptions) {
    this.deadline = new Deadline(o.deadlineMs);
    this.rng = new Rng(o.seed);
  }

  get tempDir(): string {
    return this.tmp;
  }

  async run(): Promise<ChaosReport> {
    const startedAt = Date.now();
    const { log } = this.o;
    this.tree = CompiledTree.build({ parent: this.tmp, label: 'comfy-relay-chaos-build' });
    log(`transpiled ${this.tree.files} files in ${this.tree.buildMs} ms`);
    await this.redisServer.start();
    this.redis = new Redis(this.redisServer.url, { maxRetriesPerRequest: null });
    this.redis.on('error', () => undefined);
    const keys = new StreamKeys(PREFIX);
    log(`redis-server (AOF, appendfsync always) on ${this.redisServer.url}`);

    for (let i = 1; i <= SIMULATORS; i++) {
      // 20-25 sampler steps of 8 ms: ~0.2 s of "GPU" per job, so kills land on prompts in every phase.
      const sim = new WatchedSimulator(`comfyui-${i}`, { stepMs: 8, previewMaxSize: 16 });
      await sim.start();
      this.sims.push(sim);
    }
    log(`ComfyUI simulators: ${this.sims.map((s) => s.url).join(', ')}`);

    const fake = new FakeTelegram();
    this.fake = fake;
    await fake.start();
    const botPorts = [await freePort(), await freePort()];
    const balancer = new WebhookBalancer(() =>
      botPorts.filter((_, i) => this.procs.get(`bot-${i + 1}`)?.isReady ?? false),
    );
    this.balancer = balancer;
    const webhookUrl = `http://127.0.0.1:${await balancer.start()}/telegram/webhook`;
    log(`fake Bot API on ${fake.url}; webhook load balancer at ${webhookUrl}`);

    const apiPort = await freePort();
    this.apiUrl = `http://127.0.0.1:${apiPort}`;
    const common: Record<string, string> = {
      ...this.tree.env(),
      REDIS_URL: this.redisServer.url,
      STREAM_PREFIX: PREFIX,
      COMFYUI_URLS: this.sims.map((s) => s.url).join(','),
      WORKFLOWS_DIR: join(ROOT, 'workflows'),
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
      TELEGRAM_WEBHOOK_URL: webhookUrl,
      TELEGRAM_WEBHOOK_SECRET: SECRET,
      TELEGRAM_ADMIN_IDS: String(ADMIN_ID),
      TELEGRAM_MAX_SENDS_PER_SECOND: '30',
      API_KEYS: API_KEYS.join(','),
      USER_MAX_ACTIVE: '50',
      CLAIM_IDLE_MS: '1000',
      MAX_DELIVERIES: '5',
      NO_PROGRESS_TIMEOUT_MS: '3000',
      JOB_TIMEOUT_MS: '30000',
      SHUTDOWN_GRACE_MS: '2000',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
    };
    const layout: [string, ServiceRole, Record<string, string>][] = [
      ['api-1', 'api', { PORT: String(apiPort) }],
      ['projector-1', 'projector', { PORT: '0' }],
      ['gpu-1', 'gpu', { PORT: '0' }],
      ['gpu-2', 'gpu', { PORT: '0' }],
      ['gpu-3', 'gpu', { PORT: '0' }],
      ['bot-1', 'bot', { PORT: String(botPorts[0]) }],
      ['bot-2', 'bot', { PORT: String(botPorts[1]) }],
    ];
    for (const [name, role, env] of layout) {
      const proc = new ServiceProcess(
        name,
        role,
        this.tree.main,
        { ...common, ...env, ROLE: role, INSTANCE_NAME: name },
        this.tmp,
        (exit) => this.onUnexpectedExit(proc, exit),
      );
      this.procs.set(name, proc);
      proc.start();
    }
    const ready = await Promise.all([...this.procs.values()].map((p) => p.waitReady(this.deadline.within(120_000))));
    const notReady = [...this.procs.values()].filter((_, i) => !ready[i]).map((p) => p.name);
    if (notReady.length > 0) throw new Error(`not started within 120 s: ${notReady.join(', ')} (logs in ${this.tmp})`);
    log(`processes up: ${[...this.procs.values()].map((p) => `${p.name} (${p.lastReadyMs} ms)`).join(', ')}`);
    const hooked = await waitFor(
      () => fake.webhookUrl,
      (u) => u === webhookUrl,
      this.deadline.within(30_000),
    );
    if (!hooked.met) throw new Error('the bot never registered its webhook');

    const telegramUsers = this.o.mode === 'quick' ? 12 : 30;
    const userIds = Array.from({ length: telegramUsers }, (_, i) => 900_001 + i);
    const crowd = new TelegramCrowd(fake, this.rng.fork('telegram'));
    await crowd.prepare(userIds, this.deadline);

    const plan = planLoad(this.rng.fork('load'), {
      jobs: this.o.jobs,
      windowMs: this.o.windowMs,
      apiShare: 0.5,
      apiUsers: 20,
      telegramUsers,
      apiKeys: API_KEYS,
    });
    const faults = planFaults(this.rng.fork('faults'), {
      windowMs: this.o.windowMs,
      killEveryMs: [3_000, 6_000],
      restartAfterMs: [300, 2_000],
      startupEstimateMs: 4_000,
      gpus: ['gpu-1', 'gpu-2', 'gpu-3'],
      bots: ['bot-1', 'bot-2'],
      projectors: ['projector-1'],
      hangInstance: 'comfyui-3',
      crashInstance: 'comfyui-4',
    });
    const faultLog: FaultLog = {
      planned: faults,
      executed: [],
      skipped: [],
      kills: {},
      redisRestarts: 0,
      simHangsArmed: 0,
      simCrashes: 0,
      poisonRounds: 0,
      telegram429Storms: 0,
      telegramReplays: 0,
      telegramDoubleDeliveries: 0,
      forgedPresses: 0,
      ownerCancels: 0,
    };
    log(
      `seed ${this.o.seed}: ${plan.length} jobs over ${this.o.windowMs / 1000} s ` +
        `(${plan.filter((j) => j.channel === 'api').length} HTTP, ${plan.filter((j) => j.channel === 'telegram').length} Telegram); ` +
        `${faults.length} faults`,
    );

    const poison = new PoisonInjector(this.redis, keys, this.rng.fork('poison'));
    const loadStartedAt = Date.now();
    const faultsDone = this.runFaults(faults, loadStartedAt, poison, faultLog);
    const apiOutcomes = await this.runLoad(plan, loadStartedAt, crowd);
    await faultsDone;
    const loadEndedAt = Date.now();
    await crowd.settle(this.deadline.within(60_000));
    await Promise.race([Promise.allSettled([...this.background]), sleep(this.deadline.within(30_000))]);
    faultLog.telegramReplays = crowd.outcomes.reduce((n, o) => n + o.replays, 0);
    faultLog.telegramDoubleDeliveries = plan.filter((j) => j.channel === 'telegram' && j.doubleDelivery).length;
    faultLog.forgedPresses = crowd.outcomes.filter((o) => o.forged?.answered !== undefined).length;
    faultLog.ownerCancels = crowd.outcomes.filter((o) => o.cancelPressed).length;
    log(`load and faults done in ${((loadEndedAt - loadStartedAt) / 1000).toFixed(1)} s; draining`);

    // The orchestrator brings everything back; then the fleet has to finish every job by itself.
    for (const sim of this.sims) if (sim.stats().crashed) await sim.recover();
    for (const proc of this.procs.values()) if (!proc.alive) proc.start();
    let lastShown = '';
    const drained = await waitFor(
      () => drainProgress(this.redis!, keys),
      (p) => {
        const shown = `unfinished ${p.unfinished}, pending ${JSON.stringify(p.pending)}, lag ${JSON.stringify(p.lag)}`;
        if (shown !== lastShown) {
          lastShown = shown;
          log(`  drain: ${shown}`);
        }
        return p.done;
      },
      this.deadline.within(Math.max(0, this.deadline.leftMs - 20_000)),
      500,
    );
    const drainMs = Date.now() - loadEndedAt;
    log(drained.met ? `drained in ${(drainMs / 1000).toFixed(1)} s` : 'NOT drained before the deadline');
    this.ending = true;
    const report = await verify({
      redis: this.redis,
      keys,
      options: this.o,
      plan,
      apiOutcomes,
      telegram: crowd.outcomes,
      fake,
      sims: this.sims,
      poison: poison.injected,
      procs: [...this.procs.values()],
      unexpectedExits: this.unexpectedExits,
      balancer: balancer.stats,
      redisRestarts: this.redisServer.restarts,
      faults: faultLog,
      drained: drained.met,
      drainMs,
      loadMs: loadEndedAt - loadStartedAt,
      totalMs: Date.now() - startedAt,
      secrets: [fake.token, fake.token.split(':')[1]!, SECRET, ...API_KEYS],
    });
    return report;
  }

  private onUnexpectedExit(proc: ServiceProcess, exit: UnexpectedExit): void {
    this.unexpectedExits.push(exit);
    this.o.log(`!! ${exit.name} exited by itself (code ${exit.code}, signal ${exit.signal}); restarting`);
    if (!this.ending) this.track(sleep(1_000).then(() => proc.start()));
  }

  private track(work: Promise<unknown>): void {
    const tracked: Promise<unknown> = work.catch(() => undefined).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private async runFaults(
    steps: readonly FaultStep[],
    t0: number,
    poison: PoisonInjector,
    faultLog: FaultLog,
  ): Promise<void> {
    for (const step of steps) {
      await sleep(t0 + step.at - Date.now());
      if (this.deadline.passed) return;
      const text = describeStep(step);
      try {
        switch (step.kind) {
          case 'kill': {
            const proc = this.procs.get(step.target)!;
            if (!proc.isReady) {
              faultLog.skipped.push(`${text} (still starting)`);
              continue;
            }
            await proc.kill9();
            faultLog.kills[step.target] = (faultLog.kills[step.target] ?? 0) + 1;
            this.track(sleep(step.restartAfterMs).then(() => proc.start()));
            break;
          }
          case 'redis-restart':
            await this.redisServer.restart(step.downMs);
            faultLog.redisRestarts++;
            break;
          case 'sim-hang':
            this.sim(step.instance).inject({ kind: 'hang', times: step.prompts });
            faultLog.simHangsArmed += step.prompts;
            break;
          case 'sim-crash': {
            const sim = this.sim(step.instance);
            await sim.crash();
            faultLog.simCrashes++;
            this.track(sleep(step.recoverAfterMs).then(() => sim.recover()));
            break;
          }
          case 'poison':
            await poison.injectRound();
            faultLog.poisonRounds++;
            break;
          case 'telegram-429':
            this.fake!.forceRateLimit({ forMs: step.forMs, retryAfter: 1 });
            faultLog.telegram429Storms++;
            break;
        }
        faultLog.executed.push(text);
        this.o.log(`  fault: ${text}`);
      } catch (err) {
        faultLog.skipped.push(`${text} (failed: ${err instanceof Error ? err.message : String(err)})`);
      }
    }
  }

  private sim(name: string): WatchedSimulator {
    const sim = this.sims.find((s) => s.name === name);
    if (!sim) throw new Error(`no simulator ${name}`);
    return sim;
  }

  private async runLoad(plan: readonly PlannedJob[], t0: number, crowd: TelegramCrowd): Promise<ApiOutcome[]> {
    const api: Promise<ApiOutcome>[] = [];
    let shown = 0;
    for (const job of plan) {
      await sleep(t0 + job.at - Date.now());
      if (this.deadline.passed) break;
      if (job.channel === 'api') {
        const key = API_KEYS[Number(job.user.slice(1)) % API_KEYS.length]!;
        api.push(submitApi(this.apiUrl, key, job, this.deadline));
      } else {
        crowd.send(job, this.deadline);
      }
      const elapsed = Math.floor((Date.now() - t0) / 10_000);
      if (elapsed > shown) {
        shown = elapsed;
        this.o.log(`  t+${elapsed * 10}s: ${job.n + 1}/${plan.length} jobs sent`);
      }
    }
    return Promise.all(api);
  }

  /** Stops everything this run started; safe to call twice and after a failure half-way. */
  async cleanup(): Promise<void> {
    this.ending = true;
    await Promise.allSettled([...this.procs.values()].map((p) => p.stop()));
    await Promise.allSettled(this.sims.map((s) => s.stop()));
    await this.balancer?.stop().catch(() => undefined);
    await this.fake?.stop().catch(() => undefined);
    this.redis?.disconnect();
    await this.redisServer.stop().catch(() => undefined);
    this.tree?.remove();
    if (!this.o.keep) rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Last resort on a signal or a hung run: SIGKILL every child synchronously, remove the temp dir. */
  killAllNow(): void {
    for (const proc of this.procs.values()) {
      const pid = proc.pid;
      if (pid !== undefined && proc.alive) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    void this.redisServer.kill();
    if (!this.o.keep) rmSync(this.tmp, { recursive: true, force: true });
  }
}
