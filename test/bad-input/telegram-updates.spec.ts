import { randomBytes } from 'node:crypto';
import { CallbackSigner } from '../../src/modules/bot/updates/callback-data';
import type { TestApp } from '../support/app-harness';
import { startTestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import type { BotMessage, FakeUser } from '../support/fake-telegram/fake-telegram.types';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll-until';
import { latestRequest, requestedJobs } from '../bot/support/bot-harness';
import { encodePng } from '../../src/common/png-encoder';

const SECRET = 'bad_input_webhook-0123456789';
const NOT_YOURS = 'This button is not yours.';
const EXPIRED = 'This button has expired.';

/**
 * Updates the bot must survive: kinds it does not handle, shapes Telegram never sends but a forger (or a bug)
 * might, oversized and fake files, odd captions, and callback data forged for another user's job. Each gets a
 * polite answer or none, never a job it should not make, never a cancel it should not do, never a crash; the
 * last test shows the bot still takes a good prompt. Updates go through the real webhook route.
 */
describe('bad Telegram updates (webhook mode, no GPU: jobs stay queued)', () => {
  let fake: FakeTelegram;
  let app: TestApp;
  let hookUrl: string;
  let signer: CallbackSigner;
  let nextUpdateId = 5_000_000;
  let nextUser = 7_700_001;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    signer = new CallbackSigner(fake.token);
    const port = await freePort();
    hookUrl = `http://127.0.0.1:${port}/telegram/webhook`;
    app = await startTestApp({
      ROLE: 'api,bot,projector',
      PORT: String(port),
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
      TELEGRAM_WEBHOOK_URL: hookUrl,
      TELEGRAM_WEBHOOK_SECRET: SECRET,
      USER_MAX_ACTIVE: '50',
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

  // Every job the bot made: dispatched into jobs:requests or still waiting for its turn in the fair queue.
  const jobs = async () => (await requestedJobs(app)).length;
  const newUser = (): FakeUser => fake.user(nextUser++);

  async function post(body: unknown, raw = false) {
    const res = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
      body: raw ? (body as string) : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }

  const message = (user: FakeUser, extra: Record<string, unknown>) => ({
    message_id: 900 + (nextUpdateId % 1000),
    date: Math.floor(Date.now() / 1000),
    chat: { id: user.id, type: 'private', first_name: user.firstName },
    from: { id: user.id, is_bot: false, first_name: user.firstName, language_code: 'en' },
    ...extra,
  });

  async function expectReply(chatId: number, replyTo: number | undefined, text: string | RegExp): Promise<BotMessage> {
    const [reply] = await pollUntil(
      () => fake.botMessages(chatId).filter((m) => m.replyTo === replyTo),
      (r) => r.length > 0,
      { timeoutMs: 10_000, description: `reply ${String(text)}` },
    );
    if (typeof text === 'string') expect(reply!.text).toBe(text);
    else expect(reply!.text).toMatch(text);
    return reply!;
  }

  describe('requests that are not updates → 400, nothing done', () => {
    it.each<[string, unknown, boolean]>([
      ['no update_id', { message: { text: 'hi' } }, false],
      ['update_id as a string', { update_id: '12', message: { text: 'hi' } }, false],
      ['update_id as a float', { update_id: 1.5 }, false],
      ['a JSON array', [{ update_id: 1 }], false],
      ['not JSON at all', 'update_id=1', true],
    ])('%s', async (_name, body, raw) => {
      const before = await jobs();
      const res = await post(body, raw);
      expect(res.status).toBe(400);
      expect(res.text).not.toContain(fake.token);
      expect(await jobs()).toBe(before);
    });
  });

  describe('update kinds and shapes the bot does not handle → 200, no job, no crash', () => {
    it.each<[string, (u: FakeUser) => Record<string, unknown>]>([
      ['edited_message', (u) => ({ edited_message: message(u, { text: 'edited prompt', edit_date: 1 }) })],
      ['channel_post', (u) => ({ channel_post: { ...message(u, { text: 'a channel prompt' }), from: undefined } })],
      [
        'inline_query',
        (u) => ({
          inline_query: { id: '1', from: { id: u.id, is_bot: false, first_name: 'x' }, query: 'cats', offset: '' },
        }),
      ],
      ['poll', () => ({ poll: { id: '1', question: 'q', options: [], total_voter_count: 0, is_closed: false } })],
      [
        'message_reaction',
        (u) => ({
          message_reaction: {
            chat: { id: u.id, type: 'private' },
            message_id: 1,
            date: 1,
            old_reaction: [],
            new_reaction: [],
          },
        }),
      ],
      ['an empty update (only update_id)', () => ({})],
      ['a message without a sender', (u) => ({ message: { ...message(u, { text: 'who am I' }), from: undefined } })],
      ['a message without a chat', (u) => ({ message: { ...message(u, { text: 'where am I' }), chat: undefined } })],
      ['a photo message with an empty size list', (u) => ({ message: message(u, { photo: [], caption: 'edit it' }) })],
      [
        'a voice message',
        (u) => ({ message: message(u, { voice: { file_id: 'v', file_unique_id: 'v', duration: 1 } }) }),
      ],
      ['a location', (u) => ({ message: message(u, { location: { latitude: 0, longitude: 0 } }) })],
    ])('%s', async (_name, build) => {
      const before = await jobs();
      const res = await post({ update_id: nextUpdateId++, ...build(newUser()) });
      expect(res.status).toBe(200);
      expect(await jobs()).toBe(before);
      expect((await app.http('/health/live')).status).toBe(200);
    });
  });

  describe('files and captions', () => {
    it('a document declared 30 MB → "too large", nothing downloaded', async () => {
      const user = newUser();
      const before = await jobs();
      const sent = fake.sendDocument(user, {
        bytes: encodePng(4, 4, new Uint8Array(64).fill(1)),
        fileName: 'big.png',
        mimeType: 'image/png',
        caption: 'edit it',
        declaredSize: 30 * 1024 * 1024,
      });
      await expectReply(user.id, sent.messageId, /too large/);
      expect(fake.methodCalls('getFile').filter((c) => c.chatId === user.id)).toHaveLength(0);
      expect(await jobs()).toBe(before);
    });

    it('an SVG sent as image/svg+xml → "not a picture I can read"', async () => {
      const user = newUser();
      const before = await jobs();
      const sent = fake.sendDocument(user, {
        bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        fileName: 'x.svg',
        mimeType: 'image/svg+xml',
        caption: 'edit it',
      });
      await expectReply(user.id, sent.messageId, 'That file is not a picture I can read (PNG, JPEG or WebP).');
      expect(await jobs()).toBe(before);
    });

    it('a photo whose file Telegram no longer has → "could not download", no job', async () => {
      const user = newUser();
      const before = await jobs();
      const updateId = nextUpdateId++;
      const msg = message(user, {
        photo: [{ file_id: 'AgAC-gone', file_unique_id: 'gone', width: 64, height: 64, file_size: 100 }],
        caption: 'edit it',
      });
      expect((await post({ update_id: updateId, message: msg })).status).toBe(200);
      await expectReply(
        user.id,
        msg.message_id as number,
        'I could not download that photo from Telegram. Please send it again.',
      );
      expect(await jobs()).toBe(before);
    });

    it('a caption of 5,000 characters on a real photo → "too long", no job', async () => {
      const user = newUser();
      const before = await jobs();
      const sent = fake.sendPhoto(user, {
        bytes: encodePng(8, 8, new Uint8Array(256).fill(9)),
        caption: 'c'.repeat(5_000),
      });
      await expectReply(user.id, sent.messageId, /5000 characters long; the limit is 2000/);
      expect(await jobs()).toBe(before);
    });

    it('a 100 KB text message → "too long", no job', async () => {
      const user = newUser();
      const before = await jobs();
      const sent = fake.sendText(user, 'w'.repeat(100 * 1024));
      await expectReply(user.id, sent.messageId, /limit is 2000/);
      expect(await jobs()).toBe(before);
    });

    it.each([
      ['markup that must stay text', '<b>bold</b> *star* [link](http://x) `code`'],
      ['RTL override and zero-width characters', '\u202Ereversed\u200B\u200D prompt'],
      ['emoji only', '🦊🌅🎨'],
    ])('a prompt with %s → one job, shown as plain text', async (_name, text) => {
      const user = newUser();
      const before = await jobs();
      const sent = fake.sendText(user, text);
      const status = await expectReply(user.id, sent.messageId, /In the queue|Starting/);
      expect(status.text).not.toContain('<b>');
      expect(await jobs()).toBe(before + 1);
      const entry = (await latestRequest(app)) as unknown as { jobId: string; payload: { inputs: { prompt: string } } };
      expect(entry.payload.inputs.prompt).toBe(text.trim());
    });

    it('a prompt of zero-width characters only makes no visible-less job, or is refused politely', async () => {
      const user = newUser();
      const sent = fake.sendText(user, '   ');
      await expectReply(user.id, sent.messageId, /text prompt/);
    });
  });

  describe('callback data forged for another user’s job → refused, nothing cancelled', () => {
    let victim: FakeUser;
    let attacker: FakeUser;
    let status: BotMessage;
    let victimJob: string;
    let cancelButton: string;

    beforeAll(async () => {
      victim = newUser();
      attacker = newUser();
      const sent = fake.sendText(victim, 'a picture only I may cancel');
      status = await expectReply(victim.id, sent.messageId, /In the queue/);
      cancelButton = status.replyMarkup!.inline_keyboard.flat()[0]!.callback_data!;
      const entry = (await latestRequest(app)) as unknown as { jobId: string; payload: { inputs: { prompt: string } } };
      victimJob = entry.jobId;
    });

    async function press(by: FakeUser, data: string, chatId = victim.id, messageId = status.messageId) {
      const pressed = fake.pressButton(by, chatId, messageId, data);
      const answer = await pollUntil(
        () => fake.callbackAnswers.find((a) => a.callbackQueryId === pressed.callbackQueryId),
        (a) => a !== undefined,
        { timeoutMs: 5_000, description: 'callback answered' },
      );
      return answer!;
    }

    const tamper = (data: string) => {
      const [action, id, sig] = data.split(':') as [string, string, string];
      const flipped = id[0] === 'A' ? `B${id.slice(1)}` : `A${id.slice(1)}`;
      return `${action}:${flipped}:${sig}`;
    };

    it.each<[string, () => [FakeUser, string], string]>([
      ['the victim’s Cancel button, pressed by someone else', () => [attacker, cancelButton], NOT_YOURS],
      ['the victim’s button with the job id changed', () => [victim, tamper(cancelButton)], NOT_YOURS],
      [
        'a Regenerate for the victim’s job, signed for the victim',
        () => [attacker, signer.sign('regenerate', victimJob, victim.id)],
        NOT_YOURS,
      ],
      // Only the bot token can make this one; it tests the second check (the job's owner), not the signature.
      [
        'a Cancel for the victim’s job, validly signed for the attacker',
        () => [attacker, signer.sign('cancel', victimJob, attacker.id)],
        NOT_YOURS,
      ],
      [
        'a Cancel for a job that does not exist',
        () => [attacker, signer.sign('cancel', '00000000-0000-4000-8000-000000000000', attacker.id)],
        EXPIRED,
      ],
      ['"c:" and nothing else', () => [attacker, 'c:'], EXPIRED],
      ['64 bytes of random base64url', () => [attacker, randomBytes(48).toString('base64url')], EXPIRED],
      ['non-ASCII data', () => [attacker, 'c:ключ🔑:подпись'], EXPIRED],
    ])('%s', async (_name, make, expected) => {
      const [by, data] = make();
      const answer = await press(by, data);
      expect(answer.text).toBe(expected);
      const events = (await app.redis.xrange(`${app.prefix}jobs:events`, '-', '+')).map(([, f]) => JSON.parse(f[1]!));
      expect(events.filter((e) => e.jobId === victimJob && e.type.startsWith('job.cancel'))).toHaveLength(0);
    });

    it('a settings button with a value the bot never offered is answered and changes nothing', async () => {
      const sent = fake.sendText(attacker, '/settings');
      const menu = await expectReply(attacker.id, sent.messageId, /./);
      const answer = await press(attacker, 's:lang:xx', attacker.id, menu.messageId);
      expect(answer).toBeDefined();
      expect(await app.redis.hget(`${app.prefix}bot:user:${attacker.id}:settings`, 'lang')).not.toBe('xx');
    });

    // Was a bug (fixed): a press whose callback_query has no `message` (the inline-message shape) has no
    // chat, so BotUpdate.handle() returns before anything answers it: the client's spinner never stops.
    it('a press without a message is still answered', async () => {
      const answer = await press(attacker, cancelButton, attacker.id, 424242);
      expect(answer.text).toBe(NOT_YOURS);
    });

    it('the owner can still cancel it', async () => {
      const answer = await press(victim, cancelButton);
      expect(answer.text).toMatch(/ancel/);
      await pollUntil(
        async () => (await app.http(`/v1/generations/${victimJob}`)).body.status,
        (s) => s === 'cancelled',
      );
    });
  });

  it('after all that, a good prompt still makes one job with a status message', async () => {
    const user = newUser();
    const before = await jobs();
    const sent = fake.sendText(user, 'a lighthouse at dusk');
    await expectReply(user.id, sent.messageId, /In the queue/);
    expect(await jobs()).toBe(before + 1);
  });
});
