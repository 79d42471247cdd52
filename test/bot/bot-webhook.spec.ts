import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll-until';
import { repliesTo, requestedJobs, startBotApp, waitForResults } from './support/bot-harness';

const SECRET = 'webhook_secret-0123456789';

describe('bot: webhook mode on the Nest HTTP server', () => {
  let fake: FakeTelegram;
  let app: TestApp;
  let hookUrl: string;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    const port = await freePort();
    hookUrl = `http://127.0.0.1:${port}/telegram/webhook`;
    app = await startBotApp(fake, {
      PORT: String(port),
      TELEGRAM_WEBHOOK_URL: hookUrl,
      TELEGRAM_WEBHOOK_SECRET: SECRET,
    });
    await pollUntil(
      () => fake.webhookUrl,
      (url) => url === hookUrl,
      { description: 'setWebhook' },
    );
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  const update = (updateId: number, chatId: number, text: string) => ({
    update_id: updateId,
    message: {
      message_id: 1,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: 'private', first_name: 'Eve' },
      from: { id: chatId, is_bot: false, first_name: 'Eve' },
      text,
    },
  });

  it('refuses a call without the right secret token: 401, no job, nothing sent', async () => {
    fake.user(5001);
    const post = (headers: Record<string, string>) =>
      fetch(hookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(update(777, 5001, 'a forged prompt')),
      });
    const wrong = await post({ 'x-telegram-bot-api-secret-token': 'not-the-secret-at-all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'unauthorized' });
    expect((await post({})).status).toBe(401);
    const right = await post({ 'x-telegram-bot-api-secret-token': SECRET });
    expect(right.status).toBe(200);
    const jobs = await requestedJobs(app);
    expect(jobs).toHaveLength(1); // only the one with the right secret
    expect((jobs[0]!.payload as any).inputs.prompt).toBe('a forged prompt');
    expect(fake.methodCalls('getUpdates')).toHaveLength(0); // webhook mode never polls
  });

  it('an update delivered twice at once (Telegram retry, two replicas) makes one job and one status message', async () => {
    const grace = fake.user(5002);
    const sent = fake.sendText(grace, 'twice delivered prompt', { deliveries: 2 });
    await fake.webhookIdle();
    const deliveries = fake.webhookDeliveries.filter((d) => d.updateId === sent.updateId);
    expect(deliveries.map((d) => d.status)).toEqual([200, 200]);
    await waitForResults(fake, grace.id);
    const mine = (await requestedJobs(app)).filter((e) => (e.payload as any).userId === `tg:${grace.id}`);
    expect(mine).toHaveLength(1);
    expect(repliesTo(fake, grace.id, sent.messageId)).toHaveLength(1);
    expect(fake.photos(grace.id)).toHaveLength(1);

    const health = await app.http('/health');
    expect(health.body.details.telegram).toMatchObject({
      status: 'up',
      state: 'running',
      mode: 'webhook',
      bot: fake.username,
    });
  });
});
