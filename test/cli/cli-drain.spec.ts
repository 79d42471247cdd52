import { startTestApp, type TestApp } from '../support/app-harness';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { cli } from './cli-harness';

describe('cli drain on|off|status', () => {
  let prefix: string;
  let api: TestApp;

  beforeAll(async () => {
    prefix = uniquePrefix('cli-drain');
    api = await startTestApp({ ROLE: 'api' }, prefix);
  });

  afterAll(async () => {
    await api.stop();
    const redis = testRedis();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const submit = () =>
    api.http('/v1/generations', { method: 'POST', json: { workflow: 'echo-invert', inputs: { prompt: 'x' } } });

  it('turns drain mode on and off; the API refuses new jobs while it is on', async () => {
    const first = await cli(prefix, ['drain', 'status']);
    expect(first).toEqual({ code: 0, err: '', out: 'not draining: new jobs are accepted\n' });

    const on = await cli(prefix, ['drain', 'on', '--by', 'alice']);
    expect(on.code).toBe(0);
    expect(on.out).toMatch(/^draining: new jobs are refused \(since \S+, by cli:alice\)/);
    const refused = await submit();
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('draining');

    const status = JSON.parse((await cli(prefix, ['drain', 'status', '--json'])).out);
    expect(status).toMatchObject({ draining: true, by: 'cli:alice', since: expect.any(String) });

    expect((await cli(prefix, ['drain', 'off'])).out).toBe('not draining: new jobs are accepted\n');
    expect((await submit()).status).toBe(202);
  });

  it('without a subcommand: usage and exit 2', async () => {
    const run = await cli(prefix, ['drain']);
    expect(run.code).toBe(2);
    expect(run.err).toContain('choose a subcommand: on, off or status');
  });
});
