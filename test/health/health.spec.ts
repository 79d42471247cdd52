import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { TestRedisServer } from '../support/redis-server';

describe('/health', () => {
  let server: TestRedisServer;
  let app: TestApp;

  beforeAll(async () => {
    server = await new TestRedisServer().start();
    app = await startTestApp({ REDIS_URL: server.url, HEALTH_MAX_LAG: '3' });
  });

  afterAll(async () => {
    await app.stop().catch(() => undefined);
    await server.stop();
  });

  it('is up with Redis, with details per indicator', async () => {
    const res = await app.http('/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.details.redis.status).toBe('up');
    expect(res.body.details.streams.status).toBe('up');
    expect(res.body.details.streams.groups.map((g: { group: string }) => g.group)).toEqual(
      expect.arrayContaining(['gpu', 'projector']),
    );
    expect((await app.http('/health/live')).status).toBe(200);
    expect((await app.http('/health/ready')).status).toBe(200);
  });

  it('reports a group lagging past HEALTH_MAX_LAG as down, naming it', async () => {
    const groupStream = `${app.prefix}jobs:events`;
    await app.redis.xgroup('CREATE', groupStream, 'bot', '$', 'MKSTREAM');
    for (let i = 0; i < 5; i++) await app.redis.xadd(groupStream, '*', 'e', '{}');
    const res = await pollUntil(
      () => app.http('/health'),
      (r) => r.status === 503,
    );
    const bot = res.body.details.streams.groups.find((g: { group: string }) => g.group === 'bot');
    expect(bot.problem).toMatch(/lag \d+ > HEALTH_MAX_LAG 3/);
    await app.redis.xgroup('DESTROY', groupStream, 'bot');
    await app.redis.xtrim(groupStream, 'MAXLEN', 0);
  });

  it('is down (503) with details when Redis stops; live stays up; back up after Redis returns', async () => {
    await server.kill();
    const down = await pollUntil(
      () => app.http('/health'),
      (r) => r.status === 503,
      { timeoutMs: 15_000 },
    );
    expect(down.body.status).toBe('error');
    expect(down.body.details.redis.status).toBe('down');
    expect(typeof down.body.details.redis.message).toBe('string');
    expect((await app.http('/health/ready')).status).toBe(503);
    expect((await app.http('/health/live')).status).toBe(200);
    await server.start();
    await pollUntil(
      () => app.http('/health'),
      (r) => r.status === 200,
      { timeoutMs: 20_000 },
    );
  });
});
