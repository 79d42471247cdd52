import type { AnyJobEnvelope } from '../../src/streams/job-event.types';
import { StreamKeys } from '../../src/streams/stream-keys';
import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { startBotApp, waitForPolling, waitForReply } from './support/bot-harness';

const VIP = 7001;
const REGULAR = 7002;

/** TELEGRAM_PRIORITY_USER_IDS (issue 14 item 3): those users' jobs go in the priority tier, nobody else's. */
describe('bot: the priority tier for TELEGRAM_PRIORITY_USER_IDS (fake Bot API, bot role only)', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    // No gpu role: the jobs stay queued where the test can read them.
    app = await startBotApp(fake, { ROLE: 'bot', TELEGRAM_PRIORITY_USER_IDS: `${VIP}, 9999` });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  const requests = async (stream: string): Promise<AnyJobEnvelope[]> =>
    (await app.redis.xrange(stream, '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as AnyJobEnvelope);

  it("a listed user's prompt is submitted with priority: true, another user's without", async () => {
    const keys = new StreamKeys(app.prefix);
    const vip = fake.user(VIP);
    const regular = fake.user(REGULAR);
    const fromRegular = fake.sendText(regular, 'a quiet harbour');
    const fromVip = fake.sendText(vip, 'a busy harbour');
    await waitForReply(fake, regular.id, fromRegular.messageId, 'status for the regular user');
    await waitForReply(fake, vip.id, fromVip.messageId, 'status for the priority user');

    const priority = await pollUntil(
      () => requests(keys.requestsPriority),
      (r) => r.length === 1,
    );
    expect(priority[0]).toMatchObject({ type: 'job.requested', payload: { userId: `tg:${VIP}`, priority: true } });
    const normal = await requests(keys.requests);
    expect(normal).toHaveLength(1);
    expect(normal[0]!.payload).toMatchObject({ userId: `tg:${REGULAR}` });
    expect(normal[0]!.payload).not.toHaveProperty('priority');
  });
});
