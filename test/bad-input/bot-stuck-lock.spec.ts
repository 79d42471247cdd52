import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

/**
 * Found by `npm run chaos` (full run, seed 3): a bot replica killed with -9 while it held a job's status-message
 * mutex (`bot:job:<id>:edit`, 45 s TTL) left it locked. The `bot` group's handler of job.completed first shows the
 * final status under that mutex, waits 15 s for it, fails with "status message … is busy", and only then would
 * send the picture. Each such wait costs a delivery; with crashes costing more, the entry hit MAX_DELIVERIES and
 * was dead-lettered: the job succeeded and its picture never reached the chat.
 *
 * Reproduced here without killing anything: a dead holder's token is put on the mutex before the job ends.
 */
describe('a job whose status-message mutex is held by a dead replica', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    app = await startTestApp({
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
      COMFYUI_SIM_STEP_MS: '40',
      CLAIM_IDLE_MS: '300',
      MAX_DELIVERIES: '2',
    });
    await pollUntil(
      () => fake.methodCalls('getUpdates').length,
      (n) => n > 0,
      { timeoutMs: 15_000, description: 'bot polling' },
    );
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  // Fixed: the mutex is now a short lease (3 s) renewed while its holder lives, so a dead holder's token expires
  // long before the final edit gives up waiting (15 s).
  it('still gets its picture to the chat promptly', async () => {
    const user = fake.user(8800001);
    fake.sendText(user, 'a picture behind a stuck lock');
    const requested = await pollUntil(
      async () => (await app.redis.xrange(`${app.prefix}jobs:requests`, '-', '+')).map(([, f]) => JSON.parse(f[1]!)),
      (entries) => entries.length > 0,
      { timeoutMs: 10_000, intervalMs: 5, description: 'the job' },
    );
    const jobId = requested[0].jobId as string;
    await app.redis.set(`${app.prefix}bot:job:${jobId}:edit`, 'token-of-a-replica-killed-with-9', 'PX', 3_000);
    await pollUntil(
      () => fake.photos(user.id),
      (photos) => photos.length > 0,
      { timeoutMs: 12_000, description: 'the picture in the chat' },
    );
  });
});
