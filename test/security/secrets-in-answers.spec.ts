import { startTestApp, type TestApp } from '../support/app-harness';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll-until';

const API_KEY = 'answers-api-key-0123456789abcdef';
const BOT_TOKEN = '7123456789:AAH-secret-part-never-to-be-shown_0123';
const WEBHOOK_SECRET = 'answers_webhook-secret-0123456789';
const SECRETS = [API_KEY, BOT_TOKEN, BOT_TOKEN.split(':')[1]!, WEBHOOK_SECRET];

/**
 * What the service answers over HTTP never carries a secret, even when it reports a failure that involves one:
 * the bot role here cannot reach Telegram (its API root is a closed port), so /health reports the error of a
 * call whose URL holds the token. Logs are checked by test/ops/log-redaction.spec.ts; this is the other way out.
 */
describe('secrets never appear in HTTP answers', () => {
  let app: TestApp;
  let hookUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    const closed = await freePort();
    hookUrl = `http://127.0.0.1:${port}/telegram/webhook`;
    app = await startTestApp({
      ROLE: 'api,bot,projector',
      PORT: String(port),
      API_KEYS: API_KEY,
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: `http://127.0.0.1:${closed}`,
      TELEGRAM_WEBHOOK_URL: hookUrl,
      TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
  });

  afterAll(async () => {
    await app.stop();
  });

  async function answer(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
    const res = await fetch(path.startsWith('http') ? path : `${app.url}${path}`, init);
    return { status: res.status, text: await res.text() };
  }

  function expectClean(text: string): void {
    for (const secret of SECRETS) expect({ secret, leaked: text.includes(secret) }).toEqual({ secret, leaked: false });
    expect(text).not.toMatch(/bot\d+:[A-Za-z0-9_-]{20,}/);
  }

  it('/health says Telegram is down, with the reason, without the token', async () => {
    const health = await pollUntil(
      () => answer('/health'),
      (h) => h.text.includes('telegram'),
      { timeoutMs: 15_000, description: 'telegram in /health' },
    );
    expect(health.status).toBe(503);
    expect(JSON.parse(health.text).details.telegram.status).toBe('down');
    expectClean(health.text);
    expectClean((await answer('/health/ready')).text);
  });

  it('/metrics carries no secret', async () => {
    expectClean((await answer('/metrics')).text);
  });

  it.each<[string, string, RequestInit]>([
    ['a wrong API key', '/v1/generations', { method: 'POST', headers: { authorization: `Bearer ${API_KEY}x` } }],
    [
      'the API key as a Basic password',
      '/v1/generations',
      { headers: { authorization: `Basic ${Buffer.from(`u:${API_KEY}`).toString('base64')}` } },
    ],
    [
      'the token in a query string',
      `/v1/generations/x?token=${BOT_TOKEN}`,
      { headers: { authorization: `Bearer ${API_KEY}` } },
    ],
    [
      'malformed JSON containing the key',
      '/v1/generations',
      {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: `{"k":"${API_KEY}"`,
      },
    ],
  ])('the error for %s shows no secret', async (_name, path, init) => {
    const res = await answer(path, init);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expectClean(res.text);
  });

  it('the webhook refuses a wrong secret without revealing the right one', async () => {
    const res = await answer(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': WEBHOOK_SECRET.slice(0, -1) },
      body: JSON.stringify({ update_id: 1 }),
    });
    expect(res.status).toBe(401);
    expectClean(res.text);
  });
});
