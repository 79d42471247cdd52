import type { TestApp } from '../support/app-harness';
import { startTestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { freePort } from '../support/free-port';
import { expectEventually } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';
import {
  botGroupPending,
  repliesTo,
  requestedJobs,
  startBotApp,
  streamEvents,
  waitForResults,
  waitForText,
} from './support/bot-harness';

const SECRET = 'replica_secret-0123456789';

describe('bot: two replicas on one Redis', () => {
  let fake: FakeTelegram;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterAll(async () => {
    for (const app of apps.splice(0).reverse()) await app.stop();
    await fake.stop();
  });

  async function replica(prefix: string, name: string): Promise<string> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/telegram/webhook`;
    apps.push(
      await startBotApp(
        fake,
        {
          ROLE: 'bot',
          PORT: String(port),
          INSTANCE_NAME: name,
          TELEGRAM_WEBHOOK_URL: url,
          TELEGRAM_WEBHOOK_SECRET: SECRET,
        },
        prefix,
      ),
    );
    return url;
  }

  it('the same update at both → one job, one status message edited in order, one picture, one delivery', async () => {
    const prefix = uniquePrefix('botrep');
    // Sampler steps slow enough for a few progress edits.
    apps.push(await startTestApp({ ROLE: 'api,gpu,projector', COMFYUI_SIM_STEP_MS: '80' }, prefix));
    const urlA = await replica(prefix, 'replica-a');
    await replica(prefix, 'replica-b'); // the webhook Telegram knows now points here
    const hank = fake.user(7001);
    const sent = fake.sendText(hank, 'one picture, two replicas');
    const toA = await fetch(urlA, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
      body: JSON.stringify(sent.raw),
    });
    expect(toA.status).toBe(200);

    await waitForResults(fake, hank.id);
    const [status, ...more] = repliesTo(fake, hank.id, sent.messageId);
    expect(more).toHaveLength(0);
    await waitForText(status!, /^✅ Done$/);
    await expectEventually(async () => expect(await botGroupPending(apps[0]!)).toBe(0));
    expect(await requestedJobs(apps[0]!)).toHaveLength(1);
    expect(fake.photos(hank.id)).toHaveLength(1);
    expect((await streamEvents(apps[0]!, 'jobs:events')).filter((e) => e.type === 'job.delivered')).toHaveLength(1);

    // Edits never go backwards: progress only grows, and "Done" is the last word.
    const texts = status!.edits.map((e) => e.text ?? '');
    const percents = texts
      .map((t) => /(\d+)%/.exec(t)?.[1])
      .filter((p): p is string => p !== undefined)
      .map(Number);
    expect(percents).toEqual([...percents].sort((x, y) => x - y));
    expect(texts.at(-1)).toBe('✅ Done');
    expect(texts.filter((t) => t === '✅ Done')).toHaveLength(1);
  });
});
