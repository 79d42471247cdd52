import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually } from '../support/poll-until';
import {
  botGroupPending,
  startBotApp,
  streamEvents,
  waitForPolling,
  waitForReply,
  waitForResults,
  waitForText,
} from './support/bot-harness';

describe('bot: a Bot API call Telegram refused (5xx) is retried at once', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    // A stream entry left for the sweeper would wait a minute: far past this test's deadlines.
    app = await startBotApp(fake, { CLAIM_IDLE_MS: '60000' });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  it('sendPhoto answered 500 twice: the picture follows within the same delivery, once, without a redelivery', async () => {
    const user = fake.user(9001);
    fake.failNext({ methods: ['sendPhoto'], calls: 2, status: 500, description: 'Internal Server Error' });
    const sent = fake.sendText(user, 'a lighthouse in a storm');
    const status = await waitForReply(fake, user.id, sent.messageId, 'status message');

    const [photo] = await waitForResults(fake, user.id, 1, 20_000);
    expect(photo!.caption).toBe('a lighthouse in a storm');
    await waitForText(status, /^✅ Done$/);
    expect(
      fake
        .methodCalls('sendPhoto')
        .filter((c) => c.chatId === user.id)
        .map((c) => c.status),
    ).toEqual([500, 500, 200]);
    await expectEventually(async () => expect(await botGroupPending(app)).toBe(0), { timeoutMs: 15_000 });
    // The bot group's handler never failed: the entry was not left for a later redelivery.
    const bot = app.streams.stats().filter((s) => s.group === 'bot');
    expect(bot.reduce((n, s) => n + s.failed, 0)).toBe(0);
    const delivered = (await streamEvents(app, 'jobs:events')).filter((e) => e.type === 'job.delivered');
    expect(delivered).toHaveLength(1);
    expect(fake.photos(user.id)).toHaveLength(1);
  });
});
