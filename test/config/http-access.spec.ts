import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startApp, type RunningApp } from '../../src/bootstrap';
import { createRootLogger } from '../../src/common/root-logger';
import { ConfigError, loadConfig } from '../../src/config/config.loader';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const KEY = 'http-access-key-0123456789abcdef';
const OTHER = 'http-access-other-0123456789abcd';

/** An IPv4 address of this machine that is not loopback (to reach a server the way another host would). */
const EXTERNAL_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

function problemsOf(env: Record<string, string>): { variable: string; rule: string }[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

/** Whether a TCP connection to host:port is accepted (a refused one answers at once: no timeout to wait out). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(5_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('HTTP exposure: configuration (HOST, API_AUTH, API_KEYS, tiers)', () => {
  it('without API_KEYS the server listens on 127.0.0.1 (and says why); with keys on every interface', () => {
    expect(loadConfig({}).http).toEqual({ host: '127.0.0.1', auth: 'keys', loopbackForLackOfKeys: true });
    expect(loadConfig({ API_KEYS: KEY }).http).toEqual({ host: '0.0.0.0', auth: 'keys', loopbackForLackOfKeys: false });
    expect(loadConfig({ API_AUTH: 'none' }).http).toEqual({
      host: '0.0.0.0',
      auth: 'none',
      loopbackForLackOfKeys: false,
    });
    expect(loadConfig({ HOST: '::1' }).http.host).toBe('::1');
    expect(loadConfig({ HOST: 'localhost' }).http.host).toBe('localhost');
    expect(loadConfig({ HOST: '127.0.0.2' }).http.host).toBe('127.0.0.2');
    expect(loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY }).http.host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', API_AUTH: 'none' }).http.host).toBe('0.0.0.0');
  });

  it.each(['0.0.0.0', '::', '192.0.2.10', 'relay.example.org'])(
    'HOST=%s without API_KEYS stops start-up naming HOST, API_KEYS and API_AUTH',
    (host) => {
      const problems = problemsOf({ HOST: host });
      expect(problems.map((p) => p.variable)).toEqual(['HOST']);
      expect(problems[0]!.rule).toMatch(/API_KEYS is unset/);
      expect(problems[0]!.rule).toMatch(/API_AUTH=none/);
    },
  );

  it('API_AUTH=none together with API_KEYS is a contradiction named on API_AUTH', () => {
    const problems = problemsOf({ API_AUTH: 'none', API_KEYS: KEY });
    expect(problems.map((p) => p.variable)).toEqual(['API_AUTH']);
    expect(problems[0]!.rule).toMatch(/contradicts API_KEYS/);
  });

  it('API_PRIORITY_KEYS must be a subset of API_KEYS; no key value is ever shown', () => {
    const outsider = 'not-a-configured-key-0123456789';
    const problems = problemsOf({ API_KEYS: `${KEY},${OTHER}`, API_PRIORITY_KEYS: `${KEY},${outsider}` });
    expect(problems.map((p) => p.variable)).toEqual(['API_PRIORITY_KEYS']);
    expect(problems[0]!.rule).toMatch(/subset of API_KEYS \(1 of its keys is not in API_KEYS\)/);
    expect(JSON.stringify(problems)).not.toContain(outsider);
    expect(JSON.stringify(problems)).not.toContain(KEY);
    // Without API_KEYS no priority key can be a subset.
    expect(problemsOf({ API_PRIORITY_KEYS: KEY }).map((p) => p.variable)).toEqual(['API_PRIORITY_KEYS']);

    const config = loadConfig({ API_KEYS: ` ${KEY} , ${OTHER}`, API_PRIORITY_KEYS: OTHER });
    expect(config.apiPriorityKeys).toEqual([OTHER]);
    expect(config.apiKeyMaxActive).toBeNull();
  });

  it('API_KEY_MAX_ACTIVE is per key: it needs API_KEYS', () => {
    expect(problemsOf({ API_KEY_MAX_ACTIVE: '3' }).map((p) => p.variable)).toEqual(['API_KEY_MAX_ACTIVE']);
    expect(loadConfig({ API_KEYS: KEY, API_KEY_MAX_ACTIVE: '3' }).apiKeyMaxActive).toBe(3);
  });

  it('TELEGRAM_PRIORITY_USER_IDS is a list of numeric ids', () => {
    expect(loadConfig({ TELEGRAM_PRIORITY_USER_IDS: '42, -7' }).telegram.priorityUserIds).toEqual([42, -7]);
    expect(loadConfig({}).telegram.priorityUserIds).toEqual([]);
  });

  it('the process stops with exit code 78 and the rule when HOST is public without keys', () => {
    const result = spawnSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../src/main.ts')],
      {
        env: { ...process.env, HOST: '0.0.0.0', API_KEYS: '', API_AUTH: '', PORT: '0', ROLE: 'api' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(/HOST: 0\.0\.0\.0 is not a loopback address and API_KEYS is unset/);
    expect(result.stderr).toContain('API_AUTH=none');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('HTTP exposure: where the server really listens (real HTTP, real Redis)', () => {
  let redis: ReturnType<typeof testRedis>;
  const prefixes: string[] = [];
  let running: RunningApp | undefined;

  beforeAll(() => {
    redis = testRedis();
  });

  afterEach(async () => {
    await running?.close();
    running = undefined;
    for (const prefix of prefixes.splice(0)) await cleanupPrefix(redis, prefix);
  });

  afterAll(() => redis.disconnect());

  /** Starts the app as main.ts does: no host override, the address comes from the configuration. */
  async function start(env: Record<string, string>): Promise<{ app: RunningApp; lines: string[] }> {
    const prefix = uniquePrefix('listen');
    prefixes.push(prefix);
    const config = loadConfig({ REDIS_URL: TEST_REDIS_URL, STREAM_PREFIX: prefix, PORT: '0', ROLE: 'api', ...env });
    const lines: string[] = [];
    const logger = createRootLogger(config, 'api', { write: (line: string) => void lines.push(line) });
    running = await startApp(config, { logger });
    return { app: running, lines };
  }

  const boundAddress = (app: RunningApp) => (app.app.getHttpServer().address() as AddressInfo).address;
  const messages = (lines: string[]) => lines.map((l) => JSON.parse(l) as { msg: string; level: number });

  it('without API_KEYS: bound to 127.0.0.1 only, one line says so, other addresses are refused', async () => {
    const { app, lines } = await start({});
    expect(boundAddress(app)).toBe('127.0.0.1');
    expect(app.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = (app.app.getHttpServer().address() as AddressInfo).port;
    const said = messages(lines).filter((l) => /API_KEYS is unset/.test(l.msg));
    expect(said).toHaveLength(1);
    expect(said[0]!.msg).toBe(
      `HTTP on 127.0.0.1:${port} only (this machine): API_KEYS is unset. To serve other hosts set API_KEYS, ` +
        'or API_AUTH=none with HOST to serve without keys',
    );
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    if (EXTERNAL_ADDRESS) expect(await accepts(EXTERNAL_ADDRESS, port)).toBe(false);
  });

  it('with API_KEYS: bound to every interface, no loopback line', async () => {
    const { app, lines } = await start({ API_KEYS: KEY });
    expect(boundAddress(app)).toBe('0.0.0.0');
    expect(messages(lines).some((l) => /API_KEYS is unset|API_AUTH=none/.test(l.msg))).toBe(false);
    const port = (app.app.getHttpServer().address() as AddressInfo).port;
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    if (EXTERNAL_ADDRESS) expect(await accepts(EXTERNAL_ADDRESS, port)).toBe(true);
  });

  it('API_AUTH=none with HOST=0.0.0.0: bound to every interface, with a warning line', async () => {
    const { app, lines } = await start({ API_AUTH: 'none', HOST: '0.0.0.0' });
    expect(boundAddress(app)).toBe('0.0.0.0');
    const warned = messages(lines).filter((l) => /API_AUTH=none/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.level).toBe(40);
    const port = (app.app.getHttpServer().address() as AddressInfo).port;
    if (EXTERNAL_ADDRESS) {
      expect(await accepts(EXTERNAL_ADDRESS, port)).toBe(true);
      const res = await fetch(`http://${EXTERNAL_ADDRESS}:${port}/v1/workflows`);
      expect(res.status).toBe(200);
    }
  });

  it('a caller of startApp cannot pass a public host without keys either', async () => {
    const config = loadConfig({ REDIS_URL: TEST_REDIS_URL, STREAM_PREFIX: uniquePrefix('listen'), PORT: '0' });
    await expect(startApp(config, { host: '0.0.0.0' })).rejects.toThrow(/HOST: 0\.0\.0\.0 is not a loopback/);
  });
});
