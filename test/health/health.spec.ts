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

  it('reports Redis memory against maxmemory and the image store', async () => {
    const res = await app.http('/health');
    expect(res.body.details.redisMemory).toMatchObject({
      status: 'up',
      usedBytes: expect.any(Number),
      maxBytes: 0,
      ratio: null,
      watermark: 0.9,
      warning: expect.stringMatching(/no maxmemory/),
    });
    expect(res.body.details.blobStore).toMatchObject({ status: 'up', backend: 'redis', bytes: 0, blobs: 0 });
  });

  it('above REDIS_MEMORY_HIGH_WATERMARK: submits get 503 with Retry-After, nothing is queued, /health says why', async () => {
    const requests = `${app.prefix}jobs:requests`;
    const used = Number(/used_memory:(\d+)/.exec(await app.redis.info('memory'))![1]);
    // 95 % full: Redis still takes writes, but a new job could push it over; the service refuses it up front.
    await app.redis.config('SET', 'maxmemory', String(Math.ceil(used / 0.95)));
    try {
      const refused = await pollUntil(
        () => app.http('/v1/generations', { method: 'POST', json: { workflow: 'echo-invert', inputs: {} } }),
        (r) => r.status === 503,
        { description: '503 above the watermark' },
      );
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(refused.body).toMatchObject({ error: 'overloaded', details: { reason: 'redis_memory' } });
      expect(refused.body.message).toMatch(/Redis memory \d+% of maxmemory, limit 90%/);
      // (A submit within a second of the change may still pass: readings are cached that long.)
      const queued = await app.redis.xlen(requests);
      const again = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: {} },
      });
      expect(again.status).toBe(503);
      expect(await app.redis.xlen(requests)).toBe(queued);
      const health = await app.http('/health');
      expect(health.status).toBe(503);
      expect(health.body.details.redisMemory).toMatchObject({ status: 'down', message: expect.stringMatching(/503/) });
    } finally {
      await app.redis.config('SET', 'maxmemory', '0');
    }
    const accepted = await pollUntil(
      () => app.http('/v1/generations', { method: 'POST', json: { workflow: 'echo-invert', inputs: {} } }),
      (r) => r.status === 202,
      { description: '202 once memory is back under the watermark' },
    );
    expect(accepted.body.status).toBe('queued');
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
