import { randomUUID } from 'node:crypto';
import { BLOB_STORE, type BlobStore } from '../../src/blobs/blob-store';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import type { TestApp } from '../support/app-harness';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { spawnApp } from './support/app-child';
import { FakeTelegram, MESSAGE_METHODS } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually } from '../support/poll-until';
import {
  botGroupPending,
  repliesTo,
  requestedJobs,
  startBotApp,
  streamEvents,
  waitForPolling,
  waitForReply,
  waitForResults,
  waitForText,
  testPng,
} from './support/bot-harness';

describe('bot: Telegram limits (429, 403) and the shared send budget', () => {
  let fake: FakeTelegram;
  let app: TestApp | undefined;

  beforeEach(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterEach(async () => {
    await app?.stop();
    app = undefined;
    await fake.stop();
  });

  it('429 storm: every result is delivered once, and no second ever carries more messages than the budget', async () => {
    // The app runs in its own process: the fake's clock (arrival times) must not stall while the app works.
    const budget = 5;
    const prefix = uniquePrefix('storm');
    const child = spawnApp({
      ROLE: 'api,gpu,projector,bot',
      STREAM_PREFIX: prefix,
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
      TELEGRAM_MAX_SENDS_PER_SECOND: String(budget),
    });
    const keys = { redis: testRedis(), prefix };
    try {
      await waitForPolling(fake, 0, 30_000).catch((err: unknown) => {
        throw new Error(`app did not start: ${String(err)}\n${child.output()}`);
      });
      const users = Array.from({ length: 6 }, (_, i) => fake.user(4001 + i));
      // Every message call fails with "retry after 1" for the first 2.5 s of the run.
      fake.forceRateLimit({ forMs: 2_500, retryAfter: 1 });
      const sent = users.map((u) => fake.sendText(u, `storm picture ${u.id}`));

      for (const user of users) await waitForResults(fake, user.id, 1, 90_000);
      await expectEventually(async () => expect(await botGroupPending(keys)).toBe(0), { timeoutMs: 30_000 });

      expect(fake.calls.filter((c) => MESSAGE_METHODS.includes(c.method) && c.status === 429).length).toBeGreaterThan(
        0,
      );
      expect(fake.maxCallsInAnySecond()).toBeLessThanOrEqual(budget);
      for (const [i, user] of users.entries()) {
        expect(fake.photos(user.id)).toHaveLength(1);
        const statuses = repliesTo(fake, user.id, sent[i]!.messageId);
        expect(statuses).toHaveLength(1);
        await waitForText(statuses[0]!, /^✅ Done$/);
        // Per chat: edits at least the chat interval apart (Telegram's ~1 message per second per chat).
        const edits = fake.calls.filter(
          (c) => c.chatId === user.id && c.method === 'editMessageText' && c.status === 200,
        );
        for (let k = 1; k < edits.length; k++) expect(edits[k]!.at - edits[k - 1]!.at).toBeGreaterThanOrEqual(1_000);
      }
      const delivered = (await streamEvents(keys, 'jobs:events')).filter((e) => e.type === 'job.delivered');
      expect(delivered).toHaveLength(users.length);
    } finally {
      await child.stop();
      await cleanupPrefix(keys.redis, prefix);
      keys.redis.disconnect();
    }
  });

  it('403 (the user blocked the bot): the delivery is marked undeliverable, nothing is retried, others are unaffected', async () => {
    app = await startBotApp(fake, { COMFYUI_SIM_STEP_MS: '100' });
    await waitForPolling(fake);
    const gone = fake.user(4101);
    const stays = fake.user(4102);
    const sent = fake.sendText(gone, 'never seen');
    await waitForReply(fake, gone.id, sent.messageId, 'status message');
    fake.blockChat(gone.id);
    fake.sendText(stays, 'seen');
    await waitForResults(fake, stays.id);

    const [job] = (await requestedJobs(app)).filter((e) => e.payload && (e.payload as any).userId === `tg:${gone.id}`);
    await expectEventually(
      async () => {
        expect(await app!.redis.hget(`${app!.prefix}jobs:view:${job!.jobId}`, 'status')).toMatch(/succeeded|cancelled/);
        expect(await botGroupPending(app!)).toBe(0);
        expect(await app!.redis.zscore(`${app!.prefix}bot:live`, job!.jobId)).toBeNull();
      },
      { timeoutMs: 30_000 },
    );
    const view = await app.redis.hget(`${app.prefix}jobs:view:${job!.jobId}`, 'status');
    if (view === 'succeeded') {
      await expectEventually(async () =>
        expect(await app!.redis.hget(`${app!.prefix}bot:delivery:${job!.jobId}`, 'undeliverable')).toBeTruthy(),
      );
    }
    expect(await app.redis.exists(`${app.prefix}bot:chat:${gone.id}:blocked`)).toBe(1);
    expect(fake.methodCalls('sendPhoto').filter((c) => c.chatId === gone.id)).toHaveLength(0);
    // At most one refused call per kind of message: nothing went on retrying the blocked chat.
    const refused = fake.calls.filter((c) => c.chatId === gone.id && c.status === 403);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeLessThanOrEqual(2);
    expect(fake.photos(stays.id)).toHaveLength(1);
  });

  it('results beyond sendPhoto limits, or refused as photos, go out as documents', async () => {
    // No gpu role: the test plays the worker by publishing the job's events itself.
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
    const ivan = fake.user(4201);
    const sent = fake.sendText(ivan, 'a very wide panorama');
    const status = await waitForReply(fake, ivan.id, sent.messageId, 'status message');
    const [job] = await requestedJobs(app);
    const blobs = app.app.get<BlobStore>(BLOB_STORE);
    const publisher = app.app.get(StreamPublisher);
    const strip = await blobs.put(testPng(2100, 100), 'image/png', { holder: `out:${job!.jobId}`, ttlSeconds: 600 }); // aspect ratio 21 > 20
    // A WebP whose header we can read but Telegram (the fake) cannot process as a photo.
    const webpBytes = Buffer.alloc(30);
    webpBytes.write('RIFF', 0, 'ascii');
    webpBytes.write('WEBPVP8X', 8, 'ascii');
    webpBytes.writeUIntLE(99, 24, 3);
    webpBytes.writeUIntLE(99, 27, 3);
    const webp = await blobs.put(webpBytes, 'image/webp', { holder: `out:${job!.jobId}`, ttlSeconds: 600 });
    const meta = { jobId: job!.jobId, correlationId: job!.correlationId, actor: 'test-worker' };
    await publisher.publish('job.started', meta, { worker: 'test', instance: 'test', promptId: randomUUID() });
    await publisher.publish('job.completed', meta, {
      outputs: [strip, webp],
      instance: 'test',
      promptId: randomUUID(),
      timings: { queuedMs: 1, runMs: 1 },
    });
    const results = await waitForResults(fake, ivan.id, 2);
    expect(results.map((r) => r.kind)).toEqual(['document', 'document']);
    expect(results.map((r) => r.file?.filename.split('.').pop())).toEqual(['png', 'webp']);
    expect(results[0]!.replyMarkup).toBeUndefined();
    expect(results[1]!.replyMarkup?.inline_keyboard.flat()[0]?.callback_data).toMatch(/^r:/); // Regenerate on the last
    expect(
      fake
        .methodCalls('sendPhoto')
        .filter((c) => c.chatId === ivan.id)
        .map((c) => c.status),
    ).toEqual([400]);
    await waitForText(status, /^✅ Done$/);
  });
});
