import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';

describe('SIGTERM on a gpu process', () => {
  let sim: ComfyUiSimulator;
  let api: TestApp;

  afterEach(async () => {
    await api.stop();
    await sim.stop();
  });

  it('finishes the running job within the grace period, then exits 0 and leaves nothing pending', async () => {
    sim = new ComfyUiSimulator({ stepMs: 0, manualSteps: true });
    await sim.start({ port: 0, host: '127.0.0.1' });
    const prefix = uniquePrefix('drain');
    api = await startTestApp({ ROLE: 'api,projector' }, prefix);
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../src/main.ts')],
      {
        env: {
          ...process.env,
          ROLE: 'gpu',
          REDIS_URL: TEST_REDIS_URL,
          STREAM_PREFIX: prefix,
          PORT: '0',
          COMFYUI_URLS: sim.url,
          SHUTDOWN_GRACE_MS: '20000',
          LOG_LEVEL: 'silent',
        },
        stdio: 'ignore',
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const res = await api.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'txt2img', inputs: { prompt: 'drain me', width: 64, height: 64, steps: 3 } },
      });
      await pollUntil(
        () => sim.stats().running,
        (r) => r !== null,
        { timeoutMs: 60_000 },
      );
      child.kill('SIGTERM');
      // The process must still be finishing the job: let the sampler run to the end now.
      sim.releaseSteps(100);
      expect(await exited).toBe(0);
      const view = await pollUntil(
        async () => (await api.http(`/v1/generations/${res.body.id}`)).body,
        (v) => v.status === 'succeeded',
      );
      expect(view.status).toBe('succeeded');
      const pending = (await api.redis.xpending(`${prefix}jobs:requests`, 'gpu')) as unknown[];
      expect(pending[0]).toBe(0);
      const consumers = (await api.redis.xinfo('CONSUMERS', `${prefix}jobs:requests`, 'gpu')) as unknown[];
      expect(consumers).toHaveLength(0);
      expect(sim.stats().executions).toBe(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
