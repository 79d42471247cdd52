import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

const run = promisify(execFile);

/**
 * Starts the gpu role in a fresh Node process and reports which of the simulator's modules got loaded: a gpu
 * process in front of real ComfyUI servers (COMFYUI_URLS set) must not carry the simulator in its memory.
 */
async function modulesLoaded(comfyuiUrls: string | undefined, pattern = 'tools/comfyui-sim'): Promise<number> {
  const script = `
    require('reflect-metadata');
    const { startApp } = require('./src/bootstrap');
    const { loadConfig } = require('./src/config/config.loader');
    const config = loadConfig({ ...process.env, ROLE: 'gpu', PORT: '0', LOG_LEVEL: 'silent' });
    startApp(config, { host: '127.0.0.1' }).then(async (app) => {
      const loaded = Object.keys(require.cache).filter((f) => f.includes(process.env.PATTERN)).length;
      await app.close();
      process.stdout.write('LOADED=' + loaded + '\\n');
      process.exit(0);
    }, (err) => { console.error(err); process.exit(1); });
  `;
  const { stdout } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    cwd: join(__dirname, '..', '..'),
    env: {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      STREAM_PREFIX: uniquePrefix('lazy-sim'),
      PATTERN: pattern,
      ...(comfyuiUrls ? { COMFYUI_URLS: comfyuiUrls } : { COMFYUI_URLS: '' }),
    },
    timeout: 60_000,
  });
  const match = /LOADED=(\d+)/.exec(stdout);
  if (!match) throw new Error(`no report from the child: ${stdout}`);
  return Number(match[1]);
}

const simulatorModulesLoaded = (comfyuiUrls: string | undefined) => modulesLoaded(comfyuiUrls);

describe('the built-in ComfyUI simulator is loaded only when used', () => {
  it('COMFYUI_URLS set: no simulator module in the gpu process', async () => {
    expect(await simulatorModulesLoaded('http://127.0.0.1:9')).toBe(0);
  });

  it('COMFYUI_URLS unset: the simulator is loaded and started', async () => {
    expect(await simulatorModulesLoaded(undefined)).toBeGreaterThan(5);
  });

  it('the AWS SDK is loaded only for the S3 blob backend (not by a gpu process on the Redis backend)', async () => {
    expect(await modulesLoaded('http://127.0.0.1:9', '@aws-sdk')).toBe(0);
  });

  it('@nestjs/swagger is loaded only with the api role (not by a gpu process)', async () => {
    expect(await modulesLoaded('http://127.0.0.1:9', '@nestjs/swagger')).toBe(0);
  });
});
