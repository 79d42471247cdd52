import { createHash } from 'node:crypto';
import type { RedisClient } from '../../../src/redis/redis-client';
import { encodePng } from '../../../src/common/png-encoder';
import { decodeEntry, ENVELOPE_FIELD, TICKET_FIELD } from '../../../src/streams/envelope.codec';
import type { AnyJobEnvelope } from '../../../src/streams/job-event.types';
import { startTestApp, type TestApp } from '../../support/app-harness';
import type { FakeTelegram } from '../../support/fake-telegram/fake-telegram.server';
import type { BotMessage } from '../../support/fake-telegram/fake-telegram.types';
import { pollUntil } from '../../support/poll-until';

export const ALL_ROLES = 'api,gpu,projector,bot';

/** The app (chosen roles) pointed at the fake Bot API server. */
export function startBotApp(fake: FakeTelegram, env: Record<string, string> = {}, prefix?: string): Promise<TestApp> {
  return startTestApp({ ROLE: ALL_ROLES, TELEGRAM_BOT_TOKEN: fake.token, TELEGRAM_API_ROOT: fake.url, ...env }, prefix);
}

/** Waits until the bot polls the fake (its launch loop runs once the app is up). */
export async function waitForPolling(fake: FakeTelegram, after = 0, timeoutMs = 15_000): Promise<void> {
  await pollUntil(
    () => fake.methodCalls('getUpdates').filter((c) => c.at >= after).length,
    (n) => n > 0,
    { timeoutMs, description: 'bot polling getUpdates' },
  );
}

/** The bot's text messages answering the user's message `replyTo` (status messages and refusals). */
export function repliesTo(fake: FakeTelegram, chatId: number, replyTo: number | undefined): BotMessage[] {
  return fake.botMessages(chatId).filter((m) => m.kind === 'text' && m.replyTo === replyTo);
}

/** Waits for the bot's first text answer to the user's message and returns it. */
export async function waitForReply(
  fake: FakeTelegram,
  chatId: number,
  replyTo: number | undefined,
  description = 'reply',
): Promise<BotMessage> {
  const replies = await pollUntil(
    () => repliesTo(fake, chatId, replyTo),
    (r) => r.length > 0,
    { timeoutMs: 15_000, description },
  );
  return replies[0]!;
}

/** Waits until `message` (by reference: the fake mutates it) shows text matching `pattern`. */
export async function waitForText(message: BotMessage, pattern: RegExp, timeoutMs = 30_000): Promise<BotMessage> {
  return pollUntil(
    () => message,
    (m) => pattern.test(m.text ?? ''),
    { timeoutMs, description: `message text ${pattern}` },
  );
}

export async function waitForResults(
  fake: FakeTelegram,
  chatId: number,
  count = 1,
  timeoutMs = 45_000,
): Promise<BotMessage[]> {
  return pollUntil(
    () => fake.photos(chatId),
    (p) => p.length >= count,
    { timeoutMs, description: `${count} result(s) in chat ${chatId}` },
  );
}

export function button(message: BotMessage | undefined, index = 0): string {
  const data = message?.replyMarkup?.inline_keyboard.flat()[index]?.callback_data;
  if (!data) throw new Error(`message has no button ${index}: ${JSON.stringify({ ...message, file: undefined })}`);
  return data;
}

/** Where an app keeps its keys: a TestApp, or the Redis + prefix of an app running in a child process. */
export interface KeySpace {
  redis: RedisClient;
  prefix: string;
}

export async function streamEvents(app: KeySpace, stream: 'jobs:events' | 'jobs:requests'): Promise<AnyJobEnvelope[]> {
  const entries = await app.redis.xrange(`${app.prefix}${stream}`, '-', '+');
  return entries.map(([, fields]) => decoded(fields));
}

/**
 * Every job request: those dispatched into `jobs:requests` and those still waiting for their turn in the fair
 * queue (held in `queue:request:<id>` until dispatched), in queue order after the dispatched ones.
 */
export async function requestedJobs(app: KeySpace): Promise<AnyJobEnvelope[]> {
  const dispatched = await streamEvents(app, 'jobs:requests');
  const pending = await app.redis.zrange(`${app.prefix}queue:pending`, 0, -1);
  const held: AnyJobEnvelope[] = [];
  for (const jobId of pending) {
    const [body, ticket] = await app.redis.hmget(`${app.prefix}queue:request:${jobId}`, 'e', 'n');
    if (body) held.push(decoded([ENVELOPE_FIELD, body, ...(ticket ? [TICKET_FIELD, ticket] : [])]));
  }
  return [...dispatched, ...held];
}

/** An entry as the app's readers see it (the request's ticket field merged in). */
function decoded(fields: string[]): AnyJobEnvelope {
  const result = decodeEntry(fields);
  if (!result.ok) throw new Error(`undecodable entry: ${result.reason}`);
  return result.envelope;
}

export async function botGroupPending(app: KeySpace): Promise<number> {
  const summary = (await app.redis.xpending(`${app.prefix}jobs:events`, 'bot')) as unknown[];
  return Number(summary[0]);
}

export function testPng(width = 64, height = 64, shade = 120): Buffer {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < rgba.length; i += 4) {
    rgba[i] = shade;
    rgba[i + 1] = (i / 4) % 256;
    rgba[i + 2] = 255 - shade;
    rgba[i + 3] = 255;
  }
  return encodePng(width, height, rgba);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function isPng(bytes: Buffer | undefined): boolean {
  return !!bytes && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

/** The most recently submitted job's request (highest ticket), dispatched or still waiting for its turn. */
export async function latestRequest(app: KeySpace): Promise<AnyJobEnvelope | undefined> {
  const all = await requestedJobs(app);
  const ticket = (e: AnyJobEnvelope) => e.ticket ?? 0;
  return all.reduce<AnyJobEnvelope | undefined>(
    (a, b) => (a === undefined || ticket(b) > ticket(a) ? b : a),
    undefined,
  );
}
