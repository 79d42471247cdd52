import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Telegram, TelegramError } from 'telegraf';
import { encodePng } from '../../../src/common/png-encoder';
import { pollUntil } from '../poll-until';
import { FakeTelegram } from './fake-telegram.server';

function png(width: number, height: number): Buffer {
  return encodePng(width, height, new Uint8Array(width * height * 4).fill(200));
}

async function rejection(promise: Promise<unknown>): Promise<TelegramError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TelegramError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('FakeTelegram (Bot API test server)', () => {
  let fake: FakeTelegram;
  let tg: Telegram;

  beforeEach(async () => {
    fake = new FakeTelegram();
    await fake.start();
    tg = new Telegram(fake.token, { apiRoot: fake.url });
  });

  afterEach(async () => {
    await fake.stop();
  });

  it('answers getMe with the {ok, result} envelope; a wrong token gets 401', async () => {
    const me = await tg.getMe();
    expect(me).toMatchObject({ id: 123456, is_bot: true, username: fake.username });
    const res = await fetch(`${fake.url}/bot999:wrong-token-wrong-token-xx/getMe`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ ok: false, error_code: 401, description: 'Unauthorized' });
    const unknown = await fetch(`${fake.url}/bot${fake.token}/noSuchMethod`);
    expect(await unknown.json()).toMatchObject({ ok: false, error_code: 404 });
  });

  it('long-polls getUpdates: waits for an update, confirms with offset, answers 409 to a superseded poller', async () => {
    const alice = fake.user(42, { languageCode: 'ru' });
    expect(await tg.callApi('getUpdates', { timeout: 0 })).toEqual([]);
    const waiting = tg.callApi('getUpdates', { timeout: 5, offset: 0 });
    await pollUntil(
      () => fake.waitingPolls,
      (n) => n === 1,
    );
    const sent = fake.sendText(alice, '/start');
    const updates = await waiting;
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({
      update_id: sent.updateId,
      message: { text: '/start', chat: { id: 42 }, from: { id: 42, language_code: 'ru' } },
    });
    expect((updates[0] as any).message.entities).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    // Not confirmed yet: offset 0 returns it again; offset = id + 1 confirms and forgets it.
    expect(await tg.callApi('getUpdates', { timeout: 0, offset: 0 })).toHaveLength(1);
    expect(await tg.callApi('getUpdates', { timeout: 0, offset: sent.updateId + 1 })).toEqual([]);
    expect(await tg.callApi('getUpdates', { timeout: 0 })).toEqual([]);

    const first = tg.callApi('getUpdates', { timeout: 5, offset: sent.updateId + 1 });
    await pollUntil(
      () => fake.waitingPolls,
      (n) => n === 1,
    );
    const second = tg.callApi('getUpdates', { timeout: 0, offset: sent.updateId + 1 });
    expect((await rejection(first)).code).toBe(409);
    expect(await second).toEqual([]);
  });

  it('keeps every bot message with its edits; "message is not modified" and the keyboard rules', async () => {
    fake.user(7);
    const keyboard = { inline_keyboard: [[{ text: 'Cancel', callback_data: 'c:1' }]] };
    const msg = await tg.sendMessage(7, 'queued #2', { reply_markup: keyboard });
    await tg.editMessageText(7, msg.message_id, undefined, 'running 40%', { reply_markup: keyboard });
    const same = await rejection(
      tg.editMessageText(7, msg.message_id, undefined, 'running 40%', { reply_markup: keyboard }),
    );
    expect(same.code).toBe(400);
    expect(same.description).toMatch(/^Bad Request: message is not modified/);
    // Same text without reply_markup is a change: the keyboard goes.
    await tg.editMessageText(7, msg.message_id, undefined, 'running 40%');
    const [shown] = fake.botMessages(7);
    expect(shown).toMatchObject({ text: 'running 40%', kind: 'text' });
    expect(shown!.replyMarkup).toBeUndefined();
    expect(shown!.edits.map((e) => e.text)).toEqual(['running 40%', 'running 40%']);
    expect((await rejection(tg.editMessageText(7, 999, undefined, 'x'))).description).toMatch(
      /message to edit not found/,
    );
    const tooLong = { inline_keyboard: [[{ text: 'x', callback_data: 'й'.repeat(33) }]] };
    expect((await rejection(tg.sendMessage(7, 'x', { reply_markup: tooLong }))).description).toMatch(
      /BUTTON_DATA_INVALID/,
    );
    expect((await rejection(tg.sendMessage(8, 'nobody'))).description).toMatch(/chat not found/);
    await tg.deleteMessage(7, msg.message_id);
    expect((await rejection(tg.deleteMessage(7, msg.message_id))).description).toMatch(/message to delete not found/);
  });

  it('takes photos and documents as multipart uploads, enforcing photo limits', async () => {
    fake.user(9);
    const image = png(64, 32);
    const photo = await tg.sendPhoto(9, { source: image, filename: 'a.png' }, { caption: 'a cat' });
    expect(photo.photo[0]).toMatchObject({ width: 64, height: 32 });
    const doc = await tg.sendDocument(9, { source: image, filename: 'a.png' }, { caption: 'as a file' });
    expect(doc.document.file_name).toBe('a.png');
    const sent = fake.photos(9);
    expect(sent.map((m) => m.kind)).toEqual(['photo', 'document']);
    expect(sent[0]!.file!.bytes.equals(image)).toBe(true);
    expect(sent[0]!.caption).toBe('a cat');
    const strip = png(2100, 100);
    expect((await rejection(tg.sendPhoto(9, { source: strip }))).description).toMatch(/PHOTO_INVALID_DIMENSIONS/);
  });

  it("serves users' files through getFile and /file/bot<token>/<path>, refusing files over 20 MB", async () => {
    const bob = fake.user(11);
    const bytes = png(16, 16);
    fake.sendPhoto(bob, { bytes, caption: 'make it blue', width: 16, height: 16 });
    const [update] = (await tg.callApi('getUpdates', { timeout: 0 })) as any[];
    const largest = update.message.photo[update.message.photo.length - 1];
    expect(update.message.caption).toBe('make it blue');
    const file = await tg.getFile(largest.file_id);
    const link = await tg.getFileLink(file);
    const downloaded = Buffer.from(await (await fetch(link)).arrayBuffer());
    expect(downloaded.equals(bytes)).toBe(true);
    expect((await fetch(`${fake.url}/file/botwrong/${file.file_path}`)).status).toBe(404);

    fake.sendDocument(bob, {
      bytes: png(4, 4),
      fileName: 'huge.png',
      mimeType: 'image/png',
      declaredSize: 25 * 1024 * 1024,
    });
    const [, huge] = (await tg.callApi('getUpdates', { timeout: 0 })) as any[];
    expect(huge.message.document.file_size).toBe(25 * 1024 * 1024);
    expect((await rejection(tg.getFile(huge.message.document.file_id))).description).toMatch(/file is too big/);
  });

  it('answers a callback query once', async () => {
    const carol = fake.user(12);
    const msg = await tg.sendMessage(12, 'pick', {
      reply_markup: { inline_keyboard: [[{ text: 'A', callback_data: 'a' }]] },
    });
    const press = fake.pressButton(carol, 12, msg.message_id, 'a');
    const [update] = (await tg.callApi('getUpdates', { timeout: 0 })) as any[];
    expect(update.callback_query).toMatchObject({
      id: press.callbackQueryId,
      data: 'a',
      from: { id: 12 },
      message: { message_id: msg.message_id },
    });
    await tg.answerCbQuery(press.callbackQueryId!, 'done');
    expect(fake.callbackAnswers).toEqual([
      expect.objectContaining({ callbackQueryId: press.callbackQueryId, text: 'done' }),
    ]);
    expect((await rejection(tg.answerCbQuery(press.callbackQueryId!))).description).toMatch(/query is too old/);
  });

  it('forces 429 with retry_after for N calls or for a while, 403 for a blocked chat, and counts calls per second', async () => {
    fake.user(13);
    fake.forceRateLimit({ calls: 2, retryAfter: 3 });
    const limited = await rejection(tg.sendMessage(13, 'a'));
    expect(limited.code).toBe(429);
    expect(limited.description).toBe('Too Many Requests: retry after 3');
    expect(limited.parameters?.retry_after).toBe(3);
    await rejection(tg.sendMessage(13, 'b'));
    await tg.sendMessage(13, 'c');
    expect(await tg.getMe()).toBeDefined(); // not a message method: never limited by default

    fake.forceRateLimit({ forMs: 150, retryAfter: 1 });
    expect((await rejection(tg.sendMessage(13, 'd'))).code).toBe(429);
    // Limited until the 150 ms are over, then through again.
    await pollUntil(
      () =>
        tg.sendMessage(13, 'e').then(
          () => 'sent',
          (err: unknown) => (err instanceof TelegramError ? String(err.code) : 'error'),
        ),
      (outcome) => outcome === 'sent',
    );
    fake.blockChat(13);
    const blocked = await rejection(tg.sendMessage(13, 'f'));
    expect(blocked.code).toBe(403);
    expect(blocked.description).toBe('Forbidden: bot was blocked by the user');

    const total = [...fake.callsPerSecond().values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(fake.calls.filter((c) => c.method === 'sendMessage').length);
    expect(fake.maxCallsInAnySecond()).toBeGreaterThanOrEqual(1);
    const statuses = fake.methodCalls('sendMessage').map((c) => c.status);
    expect(statuses.slice(0, 4)).toEqual([429, 429, 200, 429]);
    expect(statuses.slice(-2)).toEqual([200, 403]);
  });

  it('delivers updates to a webhook with the secret header, retries on errors, and refuses getUpdates meanwhile', async () => {
    const received: { secret: unknown; body: any }[] = [];
    let failFirst = true;
    const hook: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          secret: req.headers['x-telegram-bot-api-secret-token'],
          body: JSON.parse(Buffer.concat(chunks).toString()),
        });
        res.statusCode = failFirst ? 500 : 200;
        failFirst = false;
        res.end('{}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/tg`;
      await tg.setWebhook(url, { secret_token: 'sekret_123' });
      expect((await tg.getWebhookInfo()).url).toBe(url);
      expect((await rejection(tg.callApi('getUpdates', { timeout: 0 }))).code).toBe(409);
      const dave = fake.user(14);
      const sent = fake.sendText(dave, 'hello');
      await fake.webhookIdle();
      expect(received).toHaveLength(2); // a 500, then the retry
      expect(received.every((r) => r.secret === 'sekret_123' && r.body.update_id === sent.updateId)).toBe(true);
      expect(fake.webhookDeliveries.map((d) => d.status)).toEqual([500, 200]);
      await tg.deleteWebhook();
      expect(await tg.callApi('getUpdates', { timeout: 0 })).toEqual([]);
    } finally {
      await new Promise<void>((r) => hook.close(() => r()));
    }
  });
});
