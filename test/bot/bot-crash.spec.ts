import { join } from 'node:path';
import type { TestApp } from '../support/app-harness';
import { startTestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually, pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';
import { spawnApp, type ChildApp } from './support/app-child';
import {
  botGroupPending,
  repliesTo,
  startBotApp,
  streamEvents,
  waitForPolling,
  waitForResults,
} from './support/bot-harness';

/**
 * The crash window of the issue, made deterministic by a module preloaded into the doomed process
 * (support/pause-before-ack.hook.ts): the bot sends the picture, records it in the delivery ledger, and then holds
 * the `job.completed` entry unacknowledged until it is killed with -9. Another bot process then claims the entry and must not send the picture again.
 */
describe('bot: killed after sendPhoto, before the ack', () => {
  let fake: FakeTelegram;
  const apps: TestApp[] = [];
  let child: ChildApp | undefined;

  beforeEach(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterEach(async () => {
    if (child?.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    await child?.exited;
    child = undefined;
    for (const app of apps.splice(0).reverse()) await app.stop();
    await fake.stop();
  });

  it('leaves exactly one picture in the chat after the restart, and announces the delivery once', async () => {
    const prefix = uniquePrefix('botcrash');
    apps.push(await startTestApp({ ROLE: 'api,gpu,projector', USER_MAX_ACTIVE: '5' }, prefix));
    child = spawnApp(
      {
        STREAM_PREFIX: prefix,
        ROLE: 'bot',
        INSTANCE_NAME: 'doomed',
        TELEGRAM_BOT_TOKEN: fake.token,
        TELEGRAM_API_ROOT: fake.url,
      },
      { preload: [join(__dirname, 'support', 'pause-before-ack.hook.ts')] },
    );
    await waitForPolling(fake, 0, 30_000).catch((err: unknown) => {
      throw new Error(`bot child did not start: ${String(err)}\n${child!.output()}`);
    });

    const frank = fake.user(3001);
    const sent = fake.sendText(frank, 'a ship in a bottle');
    await waitForResults(fake, frank.id);
    const held = await pollUntil(
      () => apps[0]!.redis.keys(`${prefix}bot:test:paused:*`),
      (keys) => keys.length === 1,
      { timeoutMs: 15_000, description: 'the bot holding the delivered entry' },
    );
    expect(await botGroupPending(apps[0]!)).toBeGreaterThanOrEqual(1);

    child.child.kill('SIGKILL');
    await child.exited;

    // A new bot process (new consumer name) claims the dead one's entry after CLAIM_IDLE_MS.
    const since = Date.now();
    apps.push(await startBotApp(fake, { ROLE: 'bot', INSTANCE_NAME: 'survivor' }, prefix));
    await waitForPolling(fake, since);
    await expectEventually(async () => expect(await botGroupPending(apps[0]!)).toBe(0), { timeoutMs: 20_000 });

    expect(fake.photos(frank.id)).toHaveLength(1);
    expect(fake.methodCalls('sendPhoto').filter((c) => c.chatId === frank.id)).toHaveLength(1);
    expect(repliesTo(fake, frank.id, sent.messageId)).toHaveLength(1);
    const delivered = (await streamEvents(apps[0]!, 'jobs:events')).filter((e) => e.type === 'job.delivered');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.jobId).toBe(held[0]!.split(':').pop());
    expect(delivered[0]!.payload).toEqual({ chatId: frank.id, messageId: fake.photos(frank.id)[0]!.messageId });
  });
});
