import { encodePng } from '../../src/common/png-encoder';
import type { FakeTelegram } from '../../test/support/fake-telegram/fake-telegram.server';
import type { BotMessage, FakeUser, InjectedUpdate } from '../../test/support/fake-telegram/fake-telegram.types';
import { sleep, type Deadline } from './deadline';
import type { Rng } from './rng';

export type PlannedJob =
  | { n: number; at: number; channel: 'api'; user: string; key: string; body: Record<string, unknown> }
  | {
      n: number;
      at: number;
      channel: 'telegram';
      user: number;
      kind: 'text' | 'photo';
      prompt: string;
      /** Send the same update again (same update_id) this long after the first delivery. */
      replayAfterMs?: number;
      /** Deliver the first time twice at once (a webhook retry racing the original). */
      doubleDelivery: boolean;
      /** The owner presses Cancel once the status message shows it. */
      ownerCancel: boolean;
      /** Another user presses this job's Cancel button: must be refused. */
      forgedPressBy?: number;
    };

export interface ApiOutcome {
  n: number;
  key: string;
  user: string;
  /** Set once a 202 arrived (possibly after retries with the same Idempotency-Key). */
  jobId?: string;
  attempts: number;
  /** Answers that were neither 202 nor a retriable error (a valid request must never get one). */
  refusals: string[];
  acceptedAt?: number;
}

export interface TelegramOutcome {
  n: number;
  user: number;
  chatId: number;
  update: InjectedUpdate;
  replays: number;
  ownerCancel: boolean;
  cancelPressed: boolean;
  forged?: { by: number; answered?: string };
}

export interface LoadPlanOptions {
  jobs: number;
  windowMs: number;
  apiShare: number;
  apiUsers: number;
  telegramUsers: number;
  apiKeys: readonly string[];
}

const WORDS = ['lighthouse', 'fox', 'harbour', 'nebula', 'teapot', 'forest', 'robot', 'castle', 'violin', 'desert'];
const CAPTIONS = ['make it blue', 'add snow', 'старый фильм', 'night time 🌙', 'remove the background'];

/** The whole load, decided by the seed before anything runs. */
export function planLoad(rng: Rng, o: LoadPlanOptions): PlannedJob[] {
  const jobs: PlannedJob[] = [];
  const step = o.windowMs / Math.max(1, o.jobs);
  for (let n = 0; n < o.jobs; n++) {
    const at = Math.round(n * step + rng.next() * step);
    const prompt = `${rng.pick(WORDS)} ${rng.pick(WORDS)} #${n}`;
    if (rng.chance(o.apiShare)) {
      const edit = rng.chance(0.04);
      const body = edit
        ? { workflow: 'edit', inputs: { prompt, image: smallPng(n).toString('base64'), steps: 20 } }
        : { workflow: 'txt2img', inputs: { prompt, width: 64, height: 64, steps: 25 } };
      jobs.push({ n, at, channel: 'api', user: `u${rng.int(1, o.apiUsers)}`, key: randomUUIDFrom(rng), body });
    } else {
      const user = 900_001 + rng.int(0, o.telegramUsers - 1);
      const forged = rng.chance(0.03);
      jobs.push({
        n,
        at,
        channel: 'telegram',
        user,
        kind: rng.chance(0.05) ? 'photo' : 'text',
        prompt: rng.chance(0.5) ? prompt : `${rng.pick(CAPTIONS)} ${n}`,
        ...(rng.chance(0.06) ? { replayAfterMs: rng.int(200, 4_000) } : {}),
        doubleDelivery: rng.chance(0.03),
        ownerCancel: rng.chance(0.03),
        ...(forged ? { forgedPressBy: 900_001 + ((user - 900_001 + 1) % o.telegramUsers) } : {}),
      });
    }
  }
  return jobs;
}

function randomUUIDFrom(rng: Rng): string {
  const hex = Array.from({ length: 32 }, () => rng.int(0, 15).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

export function smallPng(seed: number, size = 32): Buffer {
  const rgba = new Uint8Array(size * size * 4);
  for (let i = 0; i < rgba.length; i += 4) {
    rgba[i] = (seed * 37 + i) % 256;
    rgba[i + 1] = (i / 4) % 256;
    rgba[i + 2] = (seed * 11) % 256;
    rgba[i + 3] = 255;
  }
  return encodePng(size, size, rgba);
}

/** An HTTP API client as a careful integrator writes it: one Idempotency-Key per job, retried until answered. */
export async function submitApi(
  apiUrl: string,
  apiKey: string,
  job: Extract<PlannedJob, { channel: 'api' }>,
  deadline: Deadline,
): Promise<ApiOutcome> {
  const outcome: ApiOutcome = { n: job.n, key: job.key, user: job.user, attempts: 0, refusals: [] };
  const until = Date.now() + deadline.within(120_000);
  let backoff = 200;
  while (Date.now() < until) {
    outcome.attempts++;
    try {
      const res = await fetch(`${apiUrl}/v1/generations`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': job.key,
          'x-user-id': job.user,
        },
        body: JSON.stringify(job.body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      if (res.status === 202) {
        outcome.jobId = (JSON.parse(text) as { id: string }).id;
        outcome.acceptedAt = Date.now();
        return outcome;
      }
      // 429: the user's active limit; 5xx/503: Redis restarting. Both: try again with the same key.
      if (res.status !== 429 && res.status < 500) {
        outcome.refusals.push(`${res.status} ${text.slice(0, 200)}`);
        return outcome;
      }
    } catch {
      // connection refused/reset, timeout: the same key makes the retry safe
    }
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 2_000);
  }
  outcome.refusals.push('no answer within the retry window');
  return outcome;
}

/** Simulated Telegram users talking to the bot through the fake Bot API (which POSTs to the webhook). */
export class TelegramCrowd {
  private readonly users = new Map<number, FakeUser>();
  readonly outcomes: TelegramOutcome[] = [];
  private readonly background = new Set<Promise<void>>();

  constructor(
    private readonly fake: FakeTelegram,
    private readonly rng: Rng,
  ) {}

  /** Every user asks for 512 px pictures first (the smallest size the bot offers), and waits for the answer. */
  async prepare(userIds: readonly number[], deadline: Deadline): Promise<void> {
    for (const id of userIds) {
      const user = this.fake.user(id, { languageCode: id % 5 === 0 ? 'ru' : 'en' });
      this.users.set(id, user);
      const sent = this.fake.sendText(user, '/settings size 512');
      const until = Date.now() + deadline.within(30_000);
      while (Date.now() < until && !this.fake.botMessages(id).some((m) => m.replyTo === sent.messageId)) {
        await sleep(50);
      }
    }
  }

  user(id: number): FakeUser {
    let user = this.users.get(id);
    if (!user) {
      user = this.fake.user(id);
      this.users.set(id, user);
    }
    return user;
  }

  send(job: Extract<PlannedJob, { channel: 'telegram' }>, deadline: Deadline): TelegramOutcome {
    const user = this.user(job.user);
    const update =
      job.kind === 'photo'
        ? this.fake.sendPhoto(user, { bytes: smallPng(job.n, 48), caption: job.prompt, width: 48, height: 48 })
        : this.fake.sendText(user, job.prompt, { deliveries: job.doubleDelivery ? 2 : 1 });
    const outcome: TelegramOutcome = {
      n: job.n,
      user: job.user,
      chatId: user.id,
      update,
      replays: 0,
      ownerCancel: job.ownerCancel,
      cancelPressed: false,
      ...(job.forgedPressBy !== undefined ? { forged: { by: job.forgedPressBy } } : {}),
    };
    this.outcomes.push(outcome);
    if (job.replayAfterMs !== undefined) {
      this.track(
        sleep(job.replayAfterMs).then(() => {
          // The very same update (same update_id) arrives again, as after a webhook timeout.
          this.fake.injectUpdate({ ...update.raw });
          outcome.replays++;
        }),
      );
    }
    if (job.ownerCancel || job.forgedPressBy !== undefined) this.track(this.pressButtons(job, outcome, deadline));
    return outcome;
  }

  private async pressButtons(
    job: Extract<PlannedJob, { channel: 'telegram' }>,
    outcome: TelegramOutcome,
    deadline: Deadline,
  ): Promise<void> {
    const status = await this.statusMessage(outcome, deadline.within(30_000));
    const data = status?.replyMarkup?.inline_keyboard.flat()[0]?.callback_data;
    if (!status || !data) return; // finished before a Cancel button could be pressed
    if (job.forgedPressBy !== undefined) {
      const forger = this.user(job.forgedPressBy);
      const press = this.fake.pressButton(forger, outcome.chatId, status.messageId, data);
      const answer = await this.answerTo(press.callbackQueryId!, deadline.within(30_000));
      if (outcome.forged) outcome.forged.answered = answer ?? '(no answer)';
    }
    if (job.ownerCancel) {
      await sleep(this.rng.int(0, 300));
      this.fake.pressButton(this.user(job.user), outcome.chatId, status.messageId, data);
      outcome.cancelPressed = true;
    }
  }

  private async statusMessage(outcome: TelegramOutcome, timeoutMs: number): Promise<BotMessage | undefined> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const answers = this.fake.botMessages(outcome.chatId).filter((m) => m.replyTo === outcome.update.messageId);
      const status = answers.find((m) => m.kind === 'text');
      if (status) return status;
      // Done before a status message was due: the picture is the only answer, there is no button to press.
      if (answers.length > 0) return undefined;
      await sleep(100);
    }
    return undefined;
  }

  private async answerTo(callbackQueryId: string, timeoutMs: number): Promise<string | undefined> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const answer = this.fake.callbackAnswers.find((a) => a.callbackQueryId === callbackQueryId);
      if (answer) return answer.text ?? '';
      await sleep(100);
    }
    return undefined;
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  /** Waits for replays and button presses still in flight (bounded). */
  async settle(timeoutMs: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.background]), sleep(timeoutMs)]);
  }
}
