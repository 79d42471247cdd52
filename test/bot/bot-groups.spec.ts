import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually } from '../support/poll-until';
import {
  botGroupPending,
  repliesTo,
  requestedJobs,
  startBotApp,
  testPng,
  waitForPolling,
  waitForReply,
  waitForResults,
} from './support/bot-harness';

describe('bot: in groups it answers only what is addressed to it', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    app = await startBotApp(fake, { USER_MAX_ACTIVE: '4' });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  const prompts = async () => (await requestedJobs(app)).map((e) => (e.payload as any).inputs.prompt as string);

  it('commands, @mentions (taken out of the prompt and caption) and replies to the bot; the rest is left alone', async () => {
    const group = fake.group(-1009001, { type: 'supergroup' });
    const alice = fake.user(8001);
    const bob = fake.user(8002);
    const chatter = [
      fake.sendText(alice, 'good morning everyone', { chatId: group }),
      fake.sendText(bob, 'what a nice lighthouse @someone_else', { chatId: group }),
      fake.sendPhoto(bob, { bytes: testPng(32, 32), caption: 'look at my cat', chatId: group }),
      fake.sendSticker(alice, { chatId: group }),
      fake.sendText(alice, '/frobnicate', { chatId: group }),
    ];

    const mention = fake.sendText(alice, `@${fake.username} a red fox in the snow`, { chatId: group });
    const status = await waitForReply(fake, group, mention.messageId, 'status message of the mention');
    const [fox] = await waitForResults(fake, group, 1);
    expect(fox).toMatchObject({ caption: 'a red fox in the snow', replyTo: mention.messageId });

    const reply = fake.sendText(bob, 'a blue whale', { chatId: group, replyTo: status.messageId });
    const edit = fake.sendPhoto(bob, {
      bytes: testPng(48, 48),
      caption: 'make it purple @COMFY_relay_test_bot',
      chatId: group,
    });
    const results = await waitForResults(fake, group, 3);
    expect(results.map((r) => r.caption).sort()).toEqual(['a blue whale', 'a red fox in the snow', 'make it purple']);
    expect(results.find((r) => r.caption === 'a blue whale')!.replyTo).toBe(reply.messageId);
    expect(results.find((r) => r.caption === 'make it purple')!.replyTo).toBe(edit.messageId);

    const help = fake.sendText(bob, `/help@${fake.username}`, { chatId: group });
    expect((await waitForReply(fake, group, help.messageId, '/help')).text).toMatch(/^Send me a text prompt/);
    const status2 = fake.sendText(alice, '/status', { chatId: group });
    expect((await waitForReply(fake, group, status2.messageId, '/status')).text).toBe('You have nothing in progress.');

    expect((await prompts()).sort()).toEqual(['a blue whale', 'a red fox in the snow', 'make it purple']);
    await expectEventually(async () => expect(await botGroupPending(app)).toBe(0));
    for (const message of chatter) expect(repliesTo(fake, group, message.messageId)).toHaveLength(0);
  });

  it('in a private chat every text is still a prompt, mentions and all', async () => {
    const carol = fake.user(8003);
    const sent = fake.sendText(carol, `a castle for @${fake.username}`);
    await waitForReply(fake, carol.id, sent.messageId, 'status message');
    expect(await prompts()).toContain(`a castle for @${fake.username}`);
  });
});
