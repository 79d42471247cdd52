import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { preloadScripts, registeredScripts } from '../../src/redis/lua-script';
import '../../src/redis/scripts';
import { testRedis } from '../support/test-redis';

describe('the Lua script registry', () => {
  const redis = testRedis();

  afterAll(() => redis.disconnect());

  it('holds every script of the service under a unique name, and each compiles in Redis', async () => {
    const scripts = registeredScripts();
    const dir = join(__dirname, '../../src/redis/scripts');
    const declared = readdirSync(dir)
      .map((f) => readFileSync(join(dir, f), 'utf8').split('new LuaScript(').length - 1)
      .reduce((a, b) => a + b, 0);
    expect(scripts.length).toBe(declared);
    expect(new Set(scripts.map((s) => s.name)).size).toBe(scripts.length);
    await redis.script('FLUSH');
    await preloadScripts(redis);
    const loaded = (await redis.script('EXISTS', ...scripts.map((s) => s.sha))) as number[];
    expect(scripts.filter((_, i) => loaded[i] !== 1).map((s) => s.name)).toEqual([]);
  });

  it('runs a script again after Redis forgot it (SCRIPT FLUSH, as after a restart)', async () => {
    const take = registeredScripts().find((s) => s.name === 'lease-take')!;
    await redis.script('FLUSH');
    const key = `test:registry:${Date.now()}`;
    try {
      expect(await take.run(redis, [key], ['me', 1000])).toBeNull();
      expect(await take.run(redis, [key], ['you', 1000])).toBe('me');
    } finally {
      await redis.del(key);
    }
  });
});
