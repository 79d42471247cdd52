import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.loader';

describe('configuration', () => {
  it('has working defaults for the embedded single-machine setup', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      streamPrefix: 'cr:',
      port: 3000,
      comfyuiUrls: [],
      userMaxActive: 2,
      maxDeliveries: 5,
    });
    expect([...config.roles].sort()).toEqual(['api', 'bot', 'gpu', 'projector']);
  });

  it('parses lists and numbers', () => {
    const config = loadConfig({
      ROLE: 'api,gpu',
      COMFYUI_URLS: 'http://127.0.0.1:8188/, http://127.0.0.1:8189',
      API_KEYS: 'key-aaaaaaaaaaaaaaaa,key-bbbbbbbbbbbbbbbb',
      TELEGRAM_ADMIN_IDS: '1, 2',
      CLAIM_IDLE_MS: '1500',
    });
    expect([...config.roles].sort()).toEqual(['api', 'gpu']);
    expect(config.comfyuiUrls).toEqual(['http://127.0.0.1:8188', 'http://127.0.0.1:8189']);
    expect(config.apiKeys).toHaveLength(2);
    expect(config.telegram.adminIds).toEqual([1, 2]);
    expect(config.claimIdleMs).toBe(1500);
  });

  it.each([
    ['PORT', 'abc', /PORT: .*integer/],
    ['PORT', '70000', /PORT: .*not be greater than 65535/],
    ['ROLE', 'web', /ROLE: must be "all" or a comma list/],
    ['REDIS_URL', 'http://x', /REDIS_URL: must be a redis:\/\//],
    ['USER_MAX_ACTIVE', '0', /USER_MAX_ACTIVE: .*not be less than 1/],
    ['CLAIM_IDLE_MS', '5', /CLAIM_IDLE_MS: .*not be less than 100/],
    ['MAX_DELIVERIES', '1.5', /MAX_DELIVERIES: .*integer/],
    ['COMFYUI_URLS', 'ftp://gpu', /COMFYUI_URLS: must be a comma list of http\(s\) URLs/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL: .*one of/],
    ['STREAM_PREFIX', 'has space', /STREAM_PREFIX/],
    ['STREAM_PREFIX', 'cr:{}:', /STREAM_PREFIX: may hold one hash tag/],
    ['STREAM_PREFIX', '{a}{b}:', /STREAM_PREFIX: may hold one hash tag/],
    ['STREAM_PREFIX', 'cr{:', /STREAM_PREFIX: may hold one hash tag/],
    ['TELEGRAM_ADMIN_IDS', 'alice', /TELEGRAM_ADMIN_IDS: must be a comma list of numeric/],
  ])('%s=%s stops start-up naming the variable and the rule', (variable, value, expected) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(expected);
  });

  it('takes a hash-tagged STREAM_PREFIX (every key in one Redis Cluster slot)', () => {
    expect(loadConfig({ STREAM_PREFIX: '{cr}:' }).streamPrefix).toBe('{cr}:');
    expect(loadConfig({ STREAM_PREFIX: 'prod:{cr}:' }).streamPrefix).toBe('prod:{cr}:');
  });

  it('reports every bad variable at once', () => {
    try {
      loadConfig({ PORT: 'x', ROLE: 'nope' });
      throw new Error('expected ConfigError');
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['PORT', 'ROLE']);
    }
  });

  it('never echoes secret values in its error', () => {
    const token = 'not-a-token-but-secret-123';
    const keys = 'short';
    try {
      loadConfig({ TELEGRAM_BOT_TOKEN: token, API_KEYS: keys });
      throw new Error('expected ConfigError');
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('TELEGRAM_BOT_TOKEN');
      expect(message).toContain('API_KEYS');
      expect(message).not.toContain(token);
      expect(message).not.toContain(`"${keys}"`);
    }
  });

  it('requires a webhook secret when a webhook URL is set', () => {
    expect(() => loadConfig({ TELEGRAM_WEBHOOK_URL: 'https://bot.example.org/telegram' })).toThrow(
      /TELEGRAM_WEBHOOK_SECRET/,
    );
  });

  it('the process exits with code 78 and the message, without a stack trace', () => {
    const result = spawnSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../src/main.ts')],
      { env: { ...process.env, PORT: 'not-a-port' }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('PORT: ');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
