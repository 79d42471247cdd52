import { startTestApp, type TestApp } from '../support/app-harness';

describe('ROLE mounts only its modules', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.stop();
  });

  const groupsOf = async (app: TestApp, stream: string) =>
    ((await app.redis.xinfo('GROUPS', `${app.prefix}${stream}`).catch(() => [])) as unknown[][]).map((g) => g[1]);

  it('api: HTTP API and health, no consumer groups', async () => {
    const app = await startTestApp({ ROLE: 'api' });
    apps.push(app);
    expect((await app.http('/v1/workflows')).status).toBe(200);
    expect((await app.http('/health/live')).status).toBe(200);
    expect(app.streams.stats()).toEqual([]);
  });

  it('projector: consumes as group projector, serves health but not the API', async () => {
    const app = await startTestApp({ ROLE: 'projector' });
    apps.push(app);
    expect((await app.http('/v1/workflows')).status).toBe(404);
    expect((await app.http('/health/live')).status).toBe(200);
    expect(app.streams.stats().map((s) => s.group)).toEqual(['projector']);
    expect(await groupsOf(app, 'jobs:events')).toEqual(['projector']);
  });

  it('gpu: consumes as group gpu only, with the ComfyUI pool in /health', async () => {
    const app = await startTestApp({ ROLE: 'gpu' });
    apps.push(app);
    expect((await app.http('/v1/workflows')).status).toBe(404);
    expect(app.streams.stats().map((s) => s.group)).toEqual(['gpu']);
    expect((await app.http('/health')).body.details.comfyui).toBeDefined();
  });
});
