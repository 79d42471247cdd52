import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import type { BotMessage, FakeUser } from '../support/fake-telegram/fake-telegram.types';
import { pollUntil } from '../support/poll-until';
import { button, startBotApp, waitForPolling, waitForReply, waitForText } from './support/bot-harness';

describe('bot: the /settings panel and its buttons', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    // No gpu role: jobs stay queued with their Cancel button.
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  async function openPanel(user: FakeUser): Promise<BotMessage> {
    const sent = fake.sendText(user, '/settings');
    return waitForReply(fake, user.id, sent.messageId, 'settings panel');
  }

  async function press(user: FakeUser, message: BotMessage, data: string) {
    const pressed = fake.pressButton(user, message.chatId, message.messageId, data);
    return pollUntil(
      () => fake.callbackAnswers.find((a) => a.callbackQueryId === pressed.callbackQueryId),
      (a) => a !== undefined,
      { description: `answer to ${data}` },
    );
  }

  const storedSettings = (user: FakeUser) => app.redis.hgetall(`${app.prefix}bot:user:${user.id}:settings`);

  it('refuses settings data no panel carries, and never redraws a status message as a panel', async () => {
    const user = fake.user(7101);
    const panel = await openPanel(user);
    for (const data of ['s:l:xx', 's:z:99999', 's:z:', 's:q:1']) {
      expect(await press(user, panel, data)).toMatchObject({ text: 'This button has expired.', showAlert: true });
    }
    expect(await storedSettings(user)).toEqual({});

    const prompt = fake.sendText(user, 'a lighthouse');
    const status = await waitForReply(fake, user.id, prompt.messageId, 'status message');
    await waitForText(status, /In the queue: #\d+/);
    const cancel = button(status);
    // A valid-looking size, pressed on the job's status message (whose only button is Cancel).
    expect(await press(user, status, 's:z:512')).toMatchObject({ text: 'This button has expired.' });
    // A real press on the panel still works; its redraw is the only one.
    expect(await press(user, panel, 's:z:768')).toMatchObject({ text: 'Saved' });
    await waitForText(panel, /Picture size: 768×768/);
    expect(await storedSettings(user)).toEqual({ size: '768' });
    expect(panel.edits).toHaveLength(1);
    expect(status.edits.every((e) => !/Picture size/.test(e.text ?? ''))).toBe(true);
    expect(status.text).toMatch(/In the queue/);
    expect(button(status)).toBe(cancel);
  });

  it('answers a refused settings press in the user language', async () => {
    const user = fake.user(7102, { languageCode: 'ru' });
    const panel = await openPanel(user);
    expect(await press(user, panel, 's:l:de')).toMatchObject({ text: 'Эта кнопка устарела.' });
    expect(await storedSettings(user)).toEqual({});
  });

  it('names the default size with the same, translated, word on the button and in the text', async () => {
    const english = await openPanel(fake.user(7103));
    expect(english.text).toMatch(/Picture size: default \(1024×1024\)/);
    const sizes = english.replyMarkup!.inline_keyboard[1]!;
    expect(sizes.map((b) => b.text)).toEqual(['512', '768', '1024', '• default']);
    expect(sizes.at(-1)!.callback_data).toBe('s:z:0');

    const russian = await openPanel(fake.user(7104, { languageCode: 'ru' }));
    expect(russian.text).toMatch(/Размер картинки: по умолчанию \(1024×1024\)/);
    expect(russian.replyMarkup!.inline_keyboard[1]!.map((b) => b.text)).toEqual([
      '512',
      '768',
      '1024',
      '• по умолчанию',
    ]);
  });
});
