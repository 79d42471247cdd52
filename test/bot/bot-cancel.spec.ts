import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually, pollUntil } from '../support/poll-until';
import {
  button,
  repliesTo,
  requestedJobs,
  startBotApp,
  streamEvents,
  waitForPolling,
  waitForReply,
  waitForText,
} from './support/bot-harness';

describe('bot: Cancel button, per-user limit', () => {
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

  async function answerTo(callbackQueryId: string | undefined) {
    return pollUntil(
      () => fake.callbackAnswers.find((a) => a.callbackQueryId === callbackQueryId),
      (a) => a !== undefined,
      { description: 'answerCallbackQuery' },
    );
  }

  it('while queued: a forged press is refused, the owner cancels, a late press hears "already finished"', async () => {
    // No gpu role: the job waits in the queue.
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
    const owner = fake.user(2001);
    const mallory = fake.user(2002);
    const sent = fake.sendText(owner, 'a castle on a hill');
    const status = await waitForReply(fake, owner.id, sent.messageId, 'status message');
    await waitForText(status, /In the queue: #1/);
    const data = button(status);

    // Someone else presses the owner's button (e.g. in a group), with the very same callback data.
    const forged = fake.pressButton(mallory, owner.id, status.messageId, data);
    expect(await answerTo(forged.callbackQueryId)).toMatchObject({
      text: 'This button is not yours.',
      showAlert: true,
    });
    // Hand-made data with a valid shape but a made-up signature.
    const madeUp = fake.pressButton(owner, owner.id, status.messageId, `${data.slice(0, -11)}AAAAAAAAAAA`);
    expect(await answerTo(madeUp.callbackQueryId)).toMatchObject({ showAlert: true });
    const [job] = await requestedJobs(app);
    expect(await app.redis.hget(`${app.prefix}jobs:view:${job!.jobId}`, 'status')).toBe('queued');

    const press = fake.pressButton(owner, owner.id, status.messageId, data);
    expect(await answerTo(press.callbackQueryId)).toMatchObject({ text: 'Cancelled' });
    await waitForText(status, /^🚫 Cancelled$/);
    expect(status.replyMarkup).toBeUndefined();
    await expectEventually(async () =>
      expect(await app!.redis.hget(`${app!.prefix}jobs:view:${job!.jobId}`, 'status')).toBe('cancelled'),
    );

    const late = fake.pressButton(owner, owner.id, status.messageId, data);
    expect(await answerTo(late.callbackQueryId)).toMatchObject({ text: 'This picture is already finished.' });
    expect(fake.photos(owner.id)).toHaveLength(0);
    // Every press was answered exactly once.
    expect(fake.callbackAnswers).toHaveLength(4);
  });

  it('a second press while the cancel is being carried out says it is under way, not "already finished"', async () => {
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
    const owner = fake.user(2005);
    const sent = fake.sendText(owner, 'a quick change of mind');
    const status = await waitForReply(fake, owner.id, sent.messageId, 'status message');
    await waitForText(status, /In the queue: #1/);
    const data = button(status);
    // Telegram holds back edits for now: the chat keeps showing the queue place and the Cancel button.
    fake.forceRateLimit({ forMs: 120_000, retryAfter: 1, methods: ['editMessageText'] });

    const first = fake.pressButton(owner, owner.id, status.messageId, data);
    expect(await answerTo(first.callbackQueryId)).toMatchObject({ text: 'Cancelled' });
    const [job] = await requestedJobs(app);
    await expectEventually(async () =>
      expect(await app!.redis.hget(`${app!.prefix}jobs:view:${job!.jobId}`, 'status')).toBe('cancelled'),
    );
    const second = fake.pressButton(owner, owner.id, status.messageId, data);
    expect(await answerTo(second.callbackQueryId)).toMatchObject({ text: 'The cancel is under way.' });
    expect(status.text).toMatch(/In the queue/);

    fake.clearRateLimit();
    await waitForText(status, /^🚫 Cancelled$/);
    const late = fake.pressButton(owner, owner.id, status.messageId, data);
    expect(await answerTo(late.callbackQueryId)).toMatchObject({ text: 'This picture is already finished.' });
  });

  it('while running: the status shows progress, Cancel stops the job, no picture is sent', async () => {
    // Slow simulated sampler steps (txt2img runs 25 of them), so the job is surely running when pressed.
    app = await startBotApp(fake, { COMFYUI_SIM_STEP_MS: '400' });
    await waitForPolling(fake);
    const dave = fake.user(2003);
    const sent = fake.sendText(dave, 'a slow sunset');
    const status = await waitForReply(fake, dave.id, sent.messageId, 'status message');
    await waitForText(status, /Drawing… \d+%/);
    const press = fake.pressButton(dave, dave.id, status.messageId, button(status));
    expect(await answerTo(press.callbackQueryId)).toMatchObject({ text: 'Cancelling…' });
    await waitForText(status, /^🚫 Cancelled$/, 30_000);
    const types = (await streamEvents(app, 'jobs:events')).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['job.started', 'job.cancel-requested', 'job.cancelled']));
    expect(types).not.toContain('job.completed');
    expect(fake.photos(dave.id)).toHaveLength(0);
    expect(status.edits.some((e) => /Cancelling/.test(e.text ?? '')) || /Cancelled/.test(status.text ?? '')).toBe(true);
  });

  it('queue positions in status messages follow the queue as jobs ahead leave it', async () => {
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
    const users = [fake.user(2101), fake.user(2102), fake.user(2103)];
    const statuses = [];
    for (const user of users) {
      const sent = fake.sendText(user, `waiting ${user.id}`);
      statuses.push(await waitForReply(fake, user.id, sent.messageId, 'status message'));
    }
    await waitForText(statuses[2]!, /In the queue: #3/);
    for (const i of [0, 1]) fake.pressButton(users[i]!, users[i]!.id, statuses[i]!.messageId, button(statuses[i]));
    await waitForText(statuses[2]!, /In the queue: #1\b/, 15_000);
    expect(statuses[2]!.replyMarkup).toBeDefined(); // still cancellable
  });

  it('per-user limit: the prompt over the limit gets a plain refusal and no job', async () => {
    app = await startBotApp(fake, { ROLE: 'bot,projector', USER_MAX_ACTIVE: '1' });
    await waitForPolling(fake);
    const erin = fake.user(2004);
    const first = fake.sendText(erin, 'first picture');
    await waitForReply(fake, erin.id, first.messageId, 'status message');
    const second = fake.sendText(erin, 'second picture');
    const refusal = await waitForReply(fake, erin.id, second.messageId, 'limit message');
    expect(refusal.text).toBe(
      'You already have 1 picture in progress; the limit is 1. Wait for one to finish or /cancel it.',
    );
    expect(refusal.replyMarkup).toBeUndefined();
    expect(await requestedJobs(app)).toHaveLength(1);
    expect(repliesTo(fake, erin.id, first.messageId)).toHaveLength(1);

    // /cancel frees the slot; the next prompt is taken.
    fake.sendText(erin, '/cancel');
    await pollUntil(
      () => fake.botMessages(erin.id).map((m) => m.text),
      (texts) => texts.includes('Cancelled 1 picture.'),
    );
    const [job] = await requestedJobs(app);
    await expectEventually(async () =>
      expect(await app!.redis.hget(`${app!.prefix}jobs:view:${job!.jobId}`, 'status')).toBe('cancelled'),
    );
    const third = fake.sendText(erin, 'third picture');
    expect((await waitForReply(fake, erin.id, third.messageId, 'third status')).text).toMatch(/In the queue/);
    expect(await requestedJobs(app)).toHaveLength(2);
  });
});
