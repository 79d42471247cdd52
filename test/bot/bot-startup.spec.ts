import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { spawnApp, type ChildApp } from './support/app-child';

/** The real entry point (src/main.ts) in a child process: what an operator sees. */
describe('bot role start-up', () => {
  let fake: FakeTelegram;
  const prefix = uniquePrefix('botstart');
  const runs: ChildApp[] = [];

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterAll(async () => {
    await Promise.all(runs.map((r) => r.stop(1_000)));
    await fake.stop();
    const redis = testRedis();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a wrong token stops start-up with a clear error that does not show the token', async () => {
    const wrongToken = '654321:WRONG-token-value-ABCDEFGHIJ';
    const run = spawnApp({
      LOG_LEVEL: 'info',
      ROLE: 'bot',
      STREAM_PREFIX: prefix,
      TELEGRAM_BOT_TOKEN: wrongToken,
      TELEGRAM_API_ROOT: fake.url,
    });
    runs.push(run);
    const code = await run.exited;
    expect(code).not.toBe(0);
    expect(run.output()).toContain('Telegram rejected TELEGRAM_BOT_TOKEN (getMe answered 401 Unauthorized)');
    expect(run.output()).not.toContain('WRONG-token-value');
    expect(fake.methodCalls('getMe').length).toBeGreaterThan(0);
  });

  it('no token: the bot role is off, said in one log line, and the process keeps serving', async () => {
    const run = spawnApp({ LOG_LEVEL: 'info', ROLE: 'bot', STREAM_PREFIX: prefix, TELEGRAM_BOT_TOKEN: '' });
    runs.push(run);
    await pollUntil(run.output, (out) => out.includes('comfy-relay started'), {
      timeoutMs: 30_000,
      description: 'start-up',
    });
    const lines = run
      .output()
      .split('\n')
      .filter((l) => l.includes('TELEGRAM_BOT_TOKEN is not set: the bot role is off'));
    expect(lines).toHaveLength(1);
    await run.stop();
    expect(await run.exited).toBe(0);
  });
});
