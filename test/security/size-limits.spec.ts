import { encodePng } from '../../src/common/png-encoder';
import { startTestApp, type TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import type { FakeUser } from '../support/fake-telegram/fake-telegram.types';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll-until';
import { requestedJobs } from '../bot/support/bot-harness';

const KEY = 'size-limits-key-0123456789abcdef';
const SECRET = 'size_limits_secret-0123456789';
const MAX_IMAGE = 64 * 1024;
const MAX_PROMPT = 100;
/** bootstrap.ts: the image limit with base64's 4/3 overhead, plus 256 KB for the rest of the body. */
const JSON_LIMIT = Math.ceil(MAX_IMAGE * 1.34) + 256 * 1024;

/** A valid PNG padded after IEND to exactly `size` bytes (decoders stop at IEND; the limit counts every byte). */
function pngOfSize(size: number): Buffer {
  const png = encodePng(4, 4, new Uint8Array(64).fill(200));
  return Buffer.concat([png, Buffer.alloc(size - png.length)]);
}

/**
 * Every input has a size limit, and the limit sits where the configuration says: one byte (or character) under
 * is taken, one over is refused with a clear answer — HTTP bodies, images, prompts, headers, query values, the
 * Telegram webhook body, Telegram prompts, and Telegram files that lie about their size.
 */
describe('size limits on every input', () => {
  let fake: FakeTelegram;
  let app: TestApp;
  let hookUrl: string;
  let nextUser = 7_900_001;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    const port = await freePort();
    hookUrl = `http://127.0.0.1:${port}/telegram/webhook`;
    app = await startTestApp({
      ROLE: 'api,bot,projector',
      PORT: String(port),
      API_KEYS: KEY,
      MAX_IMAGE_BYTES: String(MAX_IMAGE),
      MAX_PROMPT_LENGTH: String(MAX_PROMPT),
      USER_MAX_ACTIVE: '100',
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
      TELEGRAM_WEBHOOK_URL: hookUrl,
      TELEGRAM_WEBHOOK_SECRET: SECRET,
    });
    await pollUntil(
      () => fake.webhookUrl,
      (u) => u === hookUrl,
    );
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  // Every job the bot made: dispatched into jobs:requests or still waiting for its turn in the fair queue.
  const jobs = async () => (await requestedJobs(app)).length;

  async function post(json: unknown, headers: Record<string, string> = {}, rawBody?: string) {
    const res = await fetch(`${app.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
      body: rawBody ?? JSON.stringify(json),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  const txt = (prompt: string) => ({ workflow: 'txt2img', inputs: { prompt, width: 64, height: 64, steps: 2 } });

  describe('HTTP API', () => {
    it(`JSON body: just under ${JSON_LIMIT} bytes is read (and judged), just over is 413`, async () => {
      const body = (size: number) => {
        const head = '{"workflow":"txt2img","inputs":{"prompt":"x"},"pad":"';
        return `${head}${'p'.repeat(size - head.length - 2)}"}`;
      };
      expect(body(JSON_LIMIT).length).toBe(JSON_LIMIT);
      const under = await post(undefined, {}, body(JSON_LIMIT));
      expect(under.status).toBe(400); // parsed, then refused for the unknown property: the size was fine
      expect(under.body.field).toBe('pad');
      const over = await post(undefined, {}, body(JSON_LIMIT + 1));
      expect(over.status).toBe(413);
      expect(over.body.field).toBe('body');
    });

    it(`image: ${MAX_IMAGE} bytes accepted, one more refused naming inputs.image`, async () => {
      const edit = (bytes: Buffer) => ({ workflow: 'edit', inputs: { prompt: 'x', image: bytes.toString('base64') } });
      expect((await post(edit(pngOfSize(MAX_IMAGE)))).status).toBe(202);
      const over = await post(edit(pngOfSize(MAX_IMAGE + 1)));
      expect(over.status).toBe(400);
      expect(over.body.field).toBe('inputs.image');
    });

    it(`prompt: ${MAX_PROMPT} characters (code points, not UTF-16 units) accepted, one more refused`, async () => {
      expect((await post(txt('🦊'.repeat(MAX_PROMPT)))).status).toBe(202);
      const over = await post(txt('🦊'.repeat(MAX_PROMPT + 1)));
      expect(over.status).toBe(400);
      expect(over.body.field).toBe('inputs.prompt');
    });

    it.each([
      ['Idempotency-Key', 'idempotency-key', 255],
      ['X-User-Id', 'x-user-id', 64],
    ])('%s (%s): %i characters accepted, one more refused', async (field, header, max) => {
      expect((await post(txt('x'), { [header]: 'k'.repeat(max) })).status).toBe(202);
      const over = await post(txt('x'), { [header]: 'k'.repeat(max + 1) });
      expect(over.status).toBe(400);
      expect(over.body.field).toBe(field);
    });

    it('result index: four digits at most', async () => {
      const created = await post(txt('x'));
      const at = (index: string) =>
        fetch(`${app.url}/v1/generations/${created.body.id}/result?index=${index}`, {
          headers: { authorization: `Bearer ${KEY}` },
        });
      expect((await at('9999')).status).toBe(409); // well-formed: the job just has no result yet
      expect((await at('10000')).status).toBe(400);
    });

    it('request headers past 16 KB → 431 before any of our code runs', async () => {
      const res = await fetch(`${app.url}/v1/generations`, { headers: { 'x-padding': 'h'.repeat(20 * 1024) } });
      expect(res.status).toBe(431);
    });
  });

  describe('Telegram', () => {
    const user = (): FakeUser => fake.user(nextUser++);

    async function reply(chatId: number, replyTo: number | undefined): Promise<string> {
      const [message] = await pollUntil(
        () => fake.botMessages(chatId).filter((m) => m.replyTo === replyTo),
        (m) => m.length > 0,
        { timeoutMs: 10_000, description: 'the bot’s answer' },
      );
      return message!.text ?? '';
    }

    it(`webhook body over ${JSON_LIMIT} bytes → 413, nothing handled`, async () => {
      const before = await jobs();
      const res = await fetch(hookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
        body: JSON.stringify({ update_id: 1, message: { text: 'x'.repeat(JSON_LIMIT) } }),
      });
      expect(res.status).toBe(413);
      expect(await jobs()).toBe(before);
    });

    it(`prompt: ${MAX_PROMPT} characters make a job, one more gets a refusal naming the limit`, async () => {
      const u = user();
      const before = await jobs();
      const ok = fake.sendText(u, 'a'.repeat(MAX_PROMPT));
      expect(await reply(u.id, ok.messageId)).toMatch(/In the queue|Starting/);
      const over = fake.sendText(u, 'a'.repeat(MAX_PROMPT + 1));
      expect(await reply(u.id, over.messageId)).toMatch(new RegExp(`the limit is ${MAX_PROMPT}`));
      expect(await jobs()).toBe(before + 1);
    });

    it('a photo declared one byte over MAX_IMAGE_BYTES is refused before any download', async () => {
      const u = user();
      const before = await jobs();
      const sent = fake.sendPhoto(u, { bytes: pngOfSize(1024), caption: 'edit', declaredSize: MAX_IMAGE + 1 });
      expect(await reply(u.id, sent.messageId)).toMatch(/too large/);
      expect(fake.methodCalls('getFile').filter((c) => c.at >= Date.now() - 10_000 && c.chatId === u.id)).toHaveLength(
        0,
      );
      expect(await jobs()).toBe(before);
    });

    it('a file that lies about its size (declares 1 KB, is 200 KB) is cut off at the limit while downloading', async () => {
      const u = user();
      const before = await jobs();
      const sent = fake.sendDocument(u, {
        bytes: pngOfSize(200 * 1024),
        fileName: 'small.png',
        mimeType: 'image/png',
        caption: 'edit it',
        declaredSize: 1024,
      });
      expect(await reply(u.id, sent.messageId)).toMatch(/too large/);
      expect(await jobs()).toBe(before);
    });
  });
});
