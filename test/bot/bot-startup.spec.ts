import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const MAIN = join(__dirname, '../../src/main.ts');

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function runMain(env: Record<string, string>): Run {
  let output = '';
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', MAIN], {
    env: { ...process.env, REDIS_URL: TEST_REDIS_URL, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** The real entry point (src/main.ts) in a child process: what an operator sees. */
describe('bot role start-up', () => {
  let fake: FakeTelegram;
  const prefix = uniquePrefix('botstart');
  const runs: Run[] = [];

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
  });

  afterAll(async () => {
    for (const run of runs) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await Promise.all(runs.map((r) => r.exit));
    await fake.stop();
    const redis = testRedis();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a wrong token stops start-up with a clear error that does not show the token', async () => {
    const wrongToken = '654321:WRONG-token-value-ABCDEFGHIJ';
    const run = runMain({
      ROLE: 'bot',
      STREAM_PREFIX: prefix,
      TELEGRAM_BOT_TOKEN: wrongToken,
      TELEGRAM_API_ROOT: fake.url,
    });
    runs.push(run);
    const code = await run.exit;
    expect(code).not.toBe(0);
    expect(run.output()).toContain('Telegram rejected TELEGRAM_BOT_TOKEN (getMe answered 401 Unauthorized)');
    expect(run.output()).not.toContain('WRONG-token-value');
    expect(fake.methodCalls('getMe').length).toBeGreaterThan(0);
  });

  it('no token: the bot role is off, said in one log line, and the process keeps serving', async () => {
    const run = runMain({ ROLE: 'bot', STREAM_PREFIX: prefix, TELEGRAM_BOT_TOKEN: '' });
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
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });
});
