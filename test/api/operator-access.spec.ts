import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { startApp, type RunningApp } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { ApiKeyRing } from '../../src/http/api-key-ring';
import { operatorAccess } from '../../src/http/operator-access.guard';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const KEY = 'operator-access-key-0123456789abcdef';

/**
 * This machine's non-loopback IPv4 address. A request to it from here arrives with that address as its peer, as
 * one from another host would (the socket's address, not a header). Without one, only the decision function is
 * tested for remote peers.
 */
const EXTERNAL_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
const describeWithExternal = EXTERNAL_ADDRESS ? describe : describe.skip;

describe('/metrics and the detailed /health: loopback, or a key (decision)', () => {
  const withKeys = new ApiKeyRing({ apiKeys: [KEY], apiPriorityKeys: [] });
  const withoutKeys = new ApiKeyRing({ apiKeys: [], apiPriorityKeys: [] });
  const ask = (
    remoteAddress: string | undefined,
    headers: Record<string, string>,
    ring = withKeys,
    auth: 'keys' | 'none' = 'keys',
  ) => operatorAccess({ remoteAddress, headers }, ring, auth);

  it.each(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])('a loopback peer (%s) may read it', (peer) => {
    expect(ask(peer, {})).toBe('allow');
    expect(ask(peer, {}, withoutKeys)).toBe('allow');
  });

  it.each(['192.0.2.7', '10.0.0.3', '::ffff:192.0.2.7', 'fd00::2', undefined])(
    'a remote peer (%s): 401 without a valid key when keys exist, 403 when none does, allowed with a key',
    (peer) => {
      expect(ask(peer, {})).toBe('unauthorized');
      expect(ask(peer, { authorization: 'Bearer wrong-key-0123456789abcdef' })).toBe('unauthorized');
      expect(ask(peer, { authorization: `Bearer ${KEY}` })).toBe('allow');
      expect(ask(peer, {}, withoutKeys)).toBe('forbidden');
      expect(ask(peer, { authorization: `Bearer ${KEY}` }, withoutKeys)).toBe('forbidden');
    },
  );

  it.each(['x-forwarded-for', 'forwarded', 'x-real-ip'])(
    'a request a local proxy forwarded (%s) is not local',
    (header) => {
      expect(ask('127.0.0.1', { [header]: '203.0.113.9' })).toBe('unauthorized');
      expect(ask('127.0.0.1', { [header]: '203.0.113.9' }, withoutKeys)).toBe('forbidden');
      expect(ask('127.0.0.1', { [header]: '203.0.113.9', authorization: `Bearer ${KEY}` })).toBe('allow');
    },
  );

  it('API_AUTH=none opens it to everyone', () => {
    expect(ask('192.0.2.7', {}, withoutKeys, 'none')).toBe('allow');
  });
});

describe('/metrics and the detailed /health over real HTTP', () => {
  let redis: ReturnType<typeof testRedis>;
  const prefixes: string[] = [];
  const apps: RunningApp[] = [];

  beforeAll(() => {
    redis = testRedis();
  });

  afterAll(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const prefix of prefixes) await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  async function start(env: Record<string, string>): Promise<{ local: string; external: string }> {
    const prefix = uniquePrefix('opaccess');
    prefixes.push(prefix);
    const config = loadConfig({
      REDIS_URL: TEST_REDIS_URL,
      STREAM_PREFIX: prefix,
      PORT: '0',
      ROLE: 'api',
      LOG_LEVEL: 'silent',
      ...env,
    });
    const app = await startApp(config);
    apps.push(app);
    const port = (app.app.getHttpServer().address() as AddressInfo).port;
    const local = `http://127.0.0.1:${port}`;
    // Let the app settle before the test's first request (and before a close, see http-access.spec).
    expect((await fetch(`${local}/health/live`)).status).toBe(200);
    return { local, external: `http://${EXTERNAL_ADDRESS ?? '127.0.0.1'}:${port}` };
  }

  const get = async (url: string, headers: Record<string, string> = {}) => {
    const res = await fetch(url, { headers });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Prometheus text
    }
    return { status: res.status, body, headers: res.headers, text };
  };

  it('without API_KEYS (loopback only): local scrapes work; a request forwarded by a proxy gets 403', async () => {
    const { local } = await start({});
    expect((await get(`${local}/metrics`)).status).toBe(200);
    expect((await get(`${local}/health`)).status).toBe(200);
    for (const path of ['/metrics', '/health']) {
      const res = await get(`${local}${path}`, { 'x-forwarded-for': '203.0.113.9' });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ statusCode: 403, error: 'forbidden', message: expect.stringContaining('API_KEYS') });
    }
    expect((await get(`${local}/health/live`, { 'x-forwarded-for': '203.0.113.9' })).status).toBe(200);
    expect((await get(`${local}/health/ready`, { 'x-forwarded-for': '203.0.113.9' })).status).toBe(200);
  });

  describeWithExternal('from a non-loopback address (this machine, by its network address)', () => {
    it('with API_KEYS: 401 without a key, 200 with one; /health/live and /health/ready stay open', async () => {
      const { local, external } = await start({ API_KEYS: KEY });
      for (const path of ['/metrics', '/health']) {
        const refused = await get(`${external}${path}`);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toBe('Bearer');
        expect(refused.body).toEqual({ statusCode: 401, error: 'unauthorized', message: expect.any(String) });
        expect(refused.text).not.toContain('comfy_relay');
        expect((await get(`${external}${path}`, { authorization: 'Bearer wrong-key-0123456789abcdef' })).status).toBe(
          401,
        );
      }
      const scraped = await get(`${external}/metrics`, { authorization: `Bearer ${KEY}` });
      expect(scraped.status).toBe(200);
      expect(scraped.text).toContain('comfy_relay_queue_length');
      const health = await get(`${external}/health`, { authorization: `Bearer ${KEY}` });
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ok', details: { redis: { status: 'up' } } });
      expect((await get(`${external}/health/live`)).status).toBe(200);
      expect((await get(`${external}/health/ready`)).status).toBe(200);
      // The same server from loopback needs no key.
      expect((await get(`${local}/metrics`)).status).toBe(200);
    });

    it('API_AUTH=none on 0.0.0.0: open to every address, on purpose', async () => {
      const { external } = await start({ API_AUTH: 'none', HOST: '0.0.0.0' });
      expect((await get(`${external}/metrics`)).status).toBe(200);
      expect((await get(`${external}/health`)).status).toBe(200);
    });
  });
});
