import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { spawnApp, type ChildApp } from './support/app-child';
import { waitForPolling, waitForReply } from './support/bot-harness';

/** Prometheus text → `name{labels}` → value, without the `role` label. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? '')
      .replace(/,?role="[^"]*"/, '')
      .replace(/^\{,/, '{')
      .replace('{}', '');
    samples.set(`${match[1]}${labels}`, Number(match[3]));
  }
  return samples;
}

describe('bot: Telegram metrics and 429 logs', () => {
  let fake: FakeTelegram;
  let child: ChildApp | undefined;
  const redis = testRedis();
  const prefix = uniquePrefix('tgmetrics');

  beforeEach(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterEach(async () => {
    await child?.stop();
    await fake.stop();
    await cleanupPrefix(redis, prefix);
  });

  afterAll(() => redis.disconnect());

  it('counts every Bot API call by method and outcome, 429s with retry_after, 403s; one log line per 429', async () => {
    const port = await freePort();
    // In its own process: /metrics and the log are what an operator sees.
    child = spawnApp({
      ROLE: 'bot,projector',
      PORT: String(port),
      STREAM_PREFIX: prefix,
      TELEGRAM_BOT_TOKEN: fake.token,
      TELEGRAM_API_ROOT: fake.url,
    });
    const app = child;
    await waitForPolling(fake, 0, 30_000).catch((err: unknown) => {
      throw new Error(`app did not start: ${String(err)}\n${app.output()}`);
    });
    const talker = fake.user(9101);
    const gone = fake.user(9102);

    fake.forceRateLimit({ calls: 4, retryAfter: 1 });
    const help = fake.sendText(talker, '/help');
    await waitForReply(fake, talker.id, help.messageId, 'help after four 429s');
    fake.blockChat(gone.id);
    fake.sendText(gone, '/help');
    await pollUntil(
      () => fake.calls.filter((c) => c.chatId === gone.id && c.status === 403),
      (calls) => calls.length === 1,
      { description: '403 for the blocked chat' },
    );

    const sendMessage = (status: number) => fake.methodCalls('sendMessage').filter((c) => c.status === status).length;
    expect(sendMessage(429)).toBe(4);
    const scrape = async () => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const metric = (m: Map<string, number>, name: string) => m.get(`comfy_relay_${name}`) ?? 0;
    const metrics = await pollUntil(
      scrape,
      (m) =>
        metric(m, 'telegram_requests_total{method="sendMessage",outcome="ok"}') === sendMessage(200) &&
        metric(m, 'telegram_requests_total{method="sendMessage",outcome="blocked"}') === 1,
      { timeoutMs: 15_000, description: 'sendMessage counted' },
    );
    expect(metric(metrics, 'telegram_requests_total{method="sendMessage",outcome="rate_limited"}')).toBe(4);
    expect(metric(metrics, 'telegram_rate_limited_total{method="sendMessage"}')).toBe(4);
    expect(metric(metrics, 'telegram_retry_after_seconds_count')).toBe(4);
    expect(metric(metrics, 'telegram_retry_after_seconds_sum')).toBe(4);
    expect(metric(metrics, 'telegram_requests_total{method="getMe",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    // telegraf's own polling is counted too, not only the calls of our gateway.
    expect(metric(metrics, 'telegram_requests_total{method="getUpdates",outcome="ok"}')).toBeGreaterThanOrEqual(1);

    const logged = child
      .output()
      .split('\n')
      .filter((line) => line.includes('Telegram rate limit (429)'));
    expect(logged).toHaveLength(4);
    expect(
      logged.every((line) => line.includes('"method":"sendMessage"') && line.includes('"retryAfterMs":1000')),
    ).toBe(true);
    expect(child.output()).not.toContain(fake.token.split(':')[1]!);
  });
});
