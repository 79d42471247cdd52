import { Logger as NestLogger } from '@nestjs/common';
import { startApp, type RunningApp } from '../../src/bootstrap';
import { createLogScrubber } from '../../src/common/log-redaction';
import { createRootLogger } from '../../src/common/root-logger';
import { loadConfig } from '../../src/config/config.loader';
import { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const API_KEY = 'log-test-api-key-0123456789abcdef';
const BOT_TOKEN = '7012345678:AAH-fake-token-for-redaction-tests_xyz';
const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const OTHER_TOKEN = '999999:ZZZZ-another-bots-token-not-configured';

describe('logs never carry secrets (running app, pino JSON captured)', () => {
  const prefix = uniquePrefix('logs');
  const lines: string[] = [];
  const redis = testRedis();
  let app: RunningApp;
  let consumer: StreamConsumer | undefined;

  beforeAll(async () => {
    const config = loadConfig({
      REDIS_URL: TEST_REDIS_URL,
      STREAM_PREFIX: prefix,
      PORT: '0',
      ROLE: 'api,projector',
      LOG_LEVEL: 'trace',
      API_KEYS: API_KEY,
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_WEBHOOK_URL: 'https://bot.example.org/telegram/webhook',
      TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
      CLAIM_IDLE_MS: '100',
      MAX_DELIVERIES: '2',
    });
    const logger = createRootLogger(config, 'api,projector', { write: (line: string) => void lines.push(line) });
    app = await startApp(config, { logger, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await consumer?.close(500);
    await app.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('redacts API keys in headers and URLs, and bot tokens inside Telegram URLs and error messages', async () => {
    const post = await fetch(`${app.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: 'echo-invert', inputs: {} }),
    });
    expect(post.status).toBe(202);
    const wrong = await fetch(`${app.url}/v1/generations/x`, {
      headers: { authorization: 'Bearer some-guessed-key-123456' },
    });
    expect(wrong.status).toBe(401);
    const inUrl = await fetch(`${app.url}/v1/generations/x?api_key=${API_KEY}&token=${BOT_TOKEN}`, {
      headers: { authorization: `Bearer ${API_KEY}`, 'x-telegram-bot-api-secret-token': WEBHOOK_SECRET },
    });
    expect(inUrl.status).toBe(404);

    // What telegraf/fetch failures look like when a module logs them: the token is in the request URL.
    const telegramUrl = `https://api.telegram.org/bot${BOT_TOKEN}/sendPhoto`;
    app.logger.error(
      { err: new Error(`request to ${telegramUrl} failed, reason: ECONNREFUSED`) },
      'telegram call failed',
    );
    app.logger.warn({ url: telegramUrl, response: { description: `Conflict for bot${OTHER_TOKEN}` } }, 'getUpdates');
    new NestLogger('BotModule').warn(`polling ${telegramUrl.replace('sendPhoto', 'getUpdates')} answered 409`);

    await pollUntil(
      () => lines.join(''),
      (all) => all.includes('polling') && all.includes('"statusCode":404'),
      { description: 'request and module lines logged' },
    );
    const all = lines.join('');
    for (const secret of [API_KEY, BOT_TOKEN, BOT_TOKEN.split(':')[1]!, WEBHOOK_SECRET, OTHER_TOKEN.split(':')[1]!]) {
      expect({ secret, leaked: all.includes(secret) }).toEqual({ secret, leaked: false });
    }
    expect(all).not.toContain('some-guessed-key-123456');
    expect(all).toContain('"authorization":"[redacted]"');
    expect(all).toContain('https://api.telegram.org/bot[redacted]/sendPhoto');
    expect(all).toContain('Conflict for bot999999:[redacted]'); // a token nobody configured: caught by its shape
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ role: 'api,projector' });
  });

  it('lines about a job carry jobId, correlationId and role', async () => {
    const keys = new StreamKeys(prefix);
    consumer = new StreamConsumer(redis, keys, {
      streams: [keys.requests],
      group: 'gpu',
      consumer: 'gpu-logtest-1',
      concurrency: 1,
      claimIdleMs: 100,
      maxDeliveries: 2,
      deadLetterEndsJob: true,
      blockMs: 500,
      logger: app.logger,
      handle: () => Promise.reject(new Error(`upload to https://api.telegram.org/bot${BOT_TOKEN}/x failed`)),
    });
    await consumer.start();
    await new StreamPublisher(redis, keys).publish(
      'job.requested',
      { jobId: 'job-logged', correlationId: 'corr-logged', actor: 'api' },
      { workflow: 'txt2img', inputs: {}, userId: 'u', source: 'api' },
    );
    const about = await pollUntil(
      () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.jobId === 'job-logged'),
      (found) => found.some((l) => l.msg === 'entry dead-lettered'),
      { description: 'job lines logged', timeoutMs: 10_000 },
    );
    for (const line of about) {
      expect(line).toMatchObject({ jobId: 'job-logged', correlationId: 'corr-logged', role: 'api,projector' });
    }
    expect(lines.join('')).not.toContain(BOT_TOKEN.split(':')[1]!);
  });
});

describe('createLogScrubber', () => {
  it('removes configured secrets (also JSON-escaped), token shapes, Bearer credentials and Redis passwords', () => {
    const scrub = createLogScrubber(['quote"in\\key-0123', undefined, 'short']);
    const line = JSON.stringify({
      msg: 'key quote"in\\key-0123 short',
      auth: 'Bearer abc.def-ghi',
      redis: 'redis://default:s3cret-pass@redis:6379/0',
      url: 'https://api.telegram.org/bot123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_-/getMe',
    });
    const out = scrub(line);
    expect(out).not.toContain('in\\\\key-0123');
    expect(out).toContain('short'); // shorter than 8 characters: not treated as a secret
    expect(out).toContain('Bearer [redacted]');
    expect(out).toContain('redis://default:[redacted]@redis:6379/0');
    expect(out).toContain('bot123456:[redacted]/getMe');
    expect(JSON.parse(out)).toBeDefined();
  });
});

describe('the root logger scrubs object-store credentials', () => {
  it('an AWS secret key or session token in any line is redacted', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const session = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789';
    const config = loadConfig({
      BLOB_S3_BUCKET: 'results',
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_SESSION_TOKEN: session,
      LOG_LEVEL: 'info',
    });
    const lines: string[] = [];
    const logger = createRootLogger(config, 'gpu', { write: (line: string) => void lines.push(line) });
    logger.warn({ err: `SignatureDoesNotMatch for ${secret}`, header: `X-Amz-Security-Token: ${session}` }, 'upload');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(secret);
    expect(lines[0]).not.toContain(session);
    expect(lines[0]).toContain('[redacted]');
  });
});
