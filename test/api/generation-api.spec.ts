import { PNG } from 'pngjs';
import { pollUntil } from '../support/poll-until';
import { startTestApp, type TestApp } from '../support/app-harness';

const KEY = 'test-key-0123456789abcdef';
const OTHER_KEY = 'other-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };

async function readSse(url: string, until: (events: { event: string; data: any }[]) => boolean, timeoutMs = 15_000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const response = await fetch(url, { headers: auth, signal: controller.signal });
  const events: { event: string; data: any }[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        const event = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
      if (until(events)) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { status: response.status, contentType: response.headers.get('content-type'), events };
}

describe('HTTP API (all roles, echo executor, real Redis)', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ API_KEYS: `${KEY},${OTHER_KEY}`, USER_MAX_ACTIVE: '50' });
  });

  afterAll(async () => {
    await app.stop();
  });

  const submit = (json: unknown, headers: Record<string, string> = {}) =>
    app.http('/v1/generations', { method: 'POST', json, headers: { ...auth, ...headers } });

  it('POST → 202 with id, position and ETA; the job reaches succeeded with a downloadable PNG', async () => {
    const created = await submit({ workflow: 'echo-invert', inputs: { prompt: 'a red fox', width: 32, height: 24 } });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: 'queued', position: expect.any(Number) });
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.headers.get('location')).toBe(`/v1/generations/${created.body.id}`);

    const done = await pollUntil(
      () => app.http(`/v1/generations/${created.body.id}`, { headers: auth }),
      (r) => r.body.status === 'succeeded',
    );
    expect(done.body).toMatchObject({ workflow: 'echo-invert', progress: { percent: 100 } });
    expect(done.body.createdAt).toBeDefined();
    expect(done.body.finishedAt).toBeDefined();
    const result = await fetch(`${app.url}${done.body.result[0].url}`, { headers: auth });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe('image/png');
    const png = PNG.sync.read(Buffer.from(await result.arrayBuffer()));
    expect(png.width).toBeGreaterThan(0);
  });

  it('a GET right after the 202 never answers 404 (read-your-writes)', async () => {
    const created = await submit({ workflow: 'echo-invert', inputs: {} });
    const got = await app.http(`/v1/generations/${created.body.id}`, { headers: auth });
    expect(got.status).toBe(200);
    expect(['queued', 'running', 'succeeded']).toContain(got.body.status);
  });

  it('Idempotency-Key: same request → same job; different request → 422', async () => {
    const key = `idem-${Date.now()}`;
    const first = await submit({ workflow: 'echo-invert', inputs: { prompt: 'x' } }, { 'idempotency-key': key });
    const second = await submit({ workflow: 'echo-invert', inputs: { prompt: 'x' } }, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const other = await submit({ workflow: 'echo-invert', inputs: { prompt: 'y' } }, { 'idempotency-key': key });
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    const requests = await app.redis.xlen(`${app.prefix}jobs:requests`);
    const ids = new Set(
      (await app.redis.xrange(`${app.prefix}jobs:requests`, '-', '+')).map(([, f]) => JSON.parse(f[1]!).jobId),
    );
    expect(ids.size).toBe(requests);
  });

  it('SSE delivers the lifecycle in order and ends after completion', async () => {
    const created = await submit({ workflow: 'echo-invert', inputs: { prompt: 'sse' } });
    const sse = await readSse(`${app.url}/v1/generations/${created.body.id}/events`, (events) =>
      events.some((e) => e.event === 'job.completed'),
    );
    expect(sse.status).toBe(200);
    expect(sse.contentType).toContain('text/event-stream');
    const lifecycle = sse.events.map((e) => e.event).filter((t) => t !== 'job.progress');
    expect(lifecycle).toEqual(['job.requested', 'job.accepted', 'job.started', 'job.completed']);
    expect(sse.events.every((e) => e.data.jobId === created.body.id)).toBe(true);
    // Every event says the job's status after it; the last one says how the job ended.
    const statuses = sse.events.filter((e) => e.event !== 'job.progress').map((e) => e.data.status);
    expect(statuses).toEqual(['queued', 'queued', 'running', 'succeeded']);
    for (const progress of sse.events.filter((e) => e.event === 'job.progress')) {
      expect(progress.data.status).toBe('running');
    }
  });

  it('SSE of a job cancelled while queued ends with status cancelled', async () => {
    // No gpu role: the job certainly waits in the queue when it is cancelled.
    const api = await startTestApp({ ROLE: 'api,projector', API_KEYS: KEY });
    try {
      const created = await api.http('/v1/generations', {
        method: 'POST',
        json: { workflow: 'echo-invert', inputs: { prompt: 'cancel me' } },
        headers: auth,
      });
      const cancel = await api.http(`/v1/generations/${created.body.id}/cancel`, { method: 'POST', headers: auth });
      expect(cancel.status).toBeLessThan(300);
      const sse = await readSse(`${api.url}/v1/generations/${created.body.id}/events`, () => false);
      expect(sse.events.map((e) => [e.event, e.data.status])).toEqual([
        ['job.requested', 'queued'],
        ['job.cancel-requested', 'queued'],
        ['job.cancelled', 'cancelled'],
      ]);
    } finally {
      await api.stop();
    }
  });

  it('SSE of an already finished job replays its events and closes', async () => {
    const created = await submit({ workflow: 'echo-invert', inputs: {} });
    await pollUntil(
      () => app.http(`/v1/generations/${created.body.id}`, { headers: auth }),
      (r) => r.body.status === 'succeeded',
    );
    const sse = await readSse(`${app.url}/v1/generations/${created.body.id}/events`, () => false);
    expect(sse.events.map((e) => e.event).filter((t) => t !== 'job.progress')).toEqual([
      'job.requested',
      'job.accepted',
      'job.started',
      'job.completed',
    ]);
    expect(sse.events.at(-1)?.data.status).toBe('succeeded');
  });

  it('GET /v1/workflows lists the shipped workflows with their inputs', async () => {
    const res = await app.http('/v1/workflows', { headers: auth });
    expect(res.status).toBe(200);
    const names = res.body.workflows.map((w: { name: string }) => w.name);
    expect(names).toEqual(expect.arrayContaining(['txt2img', 'edit', 'echo-invert']));
  });

  describe('auth', () => {
    it('401 without a key, with a wrong key, and with a malformed header', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789' }, { authorization: KEY }] as Record<
        string,
        string
      >[]) {
        const res = await app.http('/v1/generations', { method: 'POST', json: { workflow: 'echo-invert' }, headers });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(JSON.stringify(res.body)).not.toContain(KEY);
      }
    });

    it("another key's job is a 404 for every route, as if unknown", async () => {
      const created = await submit({ workflow: 'echo-invert', inputs: { width: 8, height: 8 } });
      const other = { authorization: `Bearer ${OTHER_KEY}` };
      for (const path of ['', '/result', '/events']) {
        expect((await app.http(`/v1/generations/${created.body.id}${path}`, { headers: other })).status).toBe(404);
      }
      const cancel = await app.http(`/v1/generations/${created.body.id}/cancel`, { method: 'POST', headers: other });
      expect(cancel.status).toBe(404);
      expect((await app.http(`/v1/generations/${created.body.id}`, { headers: auth })).status).toBe(200);
    });

    it('health probes need no key, nor /metrics from this machine (operator-access.spec: from elsewhere)', async () => {
      expect((await app.http('/health/live')).status).toBe(200);
      expect((await app.http('/health/ready')).status).toBe(200);
      expect((await app.http('/metrics')).status).toBe(200);
    });
  });

  describe('bad input → 400 naming the field, nothing queued', () => {
    it.each([
      ['missing workflow', { inputs: {} }, 'workflow'],
      ['workflow of the wrong type', { workflow: 42 }, 'workflow'],
      ['unknown workflow', { workflow: 'no-such-flow' }, 'workflow'],
      ['path-like workflow', { workflow: '../etc/passwd' }, 'workflow'],
      ['inputs not an object', { workflow: 'echo-invert', inputs: 'x' }, 'inputs'],
      ['unknown input', { workflow: 'echo-invert', inputs: { nope: 1 } }, 'inputs.nope'],
      ['wrong input type', { workflow: 'echo-invert', inputs: { width: '64' } }, 'inputs.width'],
      ['input out of range', { workflow: 'echo-invert', inputs: { width: 999999 } }, 'inputs.width'],
      ['missing required input', { workflow: 'txt2img', inputs: {} }, 'inputs.prompt'],
      [
        'image that is not an image',
        { workflow: 'invert', inputs: { image: Buffer.from('hello').toString('base64') } },
        'inputs.image',
      ],
      ['unknown top-level property', { workflow: 'echo-invert', extra: true }, 'extra'],
    ])('%s', async (_name, body, field) => {
      const before = await app.redis.xlen(`${app.prefix}jobs:requests`);
      const res = await submit(body);
      expect(res.status).toBe(400);
      expect(res.body.field).toBe(field);
      expect(typeof res.body.message).toBe('string');
      expect(await app.redis.xlen(`${app.prefix}jobs:requests`)).toBe(before);
    });

    it('malformed JSON → 400 naming the body', async () => {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        body: '{"workflow":',
        headers: { ...auth, 'content-type': 'application/json' },
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ field: 'body', error: 'bad_request' });
    });

    it('a body over the limit → 413, not a crash', async () => {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        body: JSON.stringify({ workflow: 'echo-invert', inputs: { prompt: 'x'.repeat(20 * 1024 * 1024) } }),
        headers: { ...auth, 'content-type': 'application/json' },
      });
      expect(res.status).toBe(413);
      expect((await app.http('/health/live')).status).toBe(200);
    });

    it('a bad Idempotency-Key header → 400 naming it', async () => {
      const res = await submit({ workflow: 'echo-invert' }, { 'idempotency-key': 'x'.repeat(300) });
      expect(res.status).toBe(400);
      expect(res.body.field).toBe('Idempotency-Key');
    });

    it('bad result index → 400 naming index', async () => {
      const created = await submit({ workflow: 'echo-invert' });
      const res = await app.http(`/v1/generations/${created.body.id}/result?index=-1`, { headers: auth });
      expect(res.status).toBe(400);
      expect(res.body.field).toBe('index');
    });
  });

  describe('unknown ids → 404', () => {
    it.each(['/v1/generations/%s', '/v1/generations/%s/result', '/v1/generations/%s/events'])(
      'GET %s',
      async (path) => {
        for (const id of ['00000000-0000-4000-8000-000000000000', 'not-an-id']) {
          const res = await app.http(path.replace('%s', id), { headers: auth });
          expect(res.status).toBe(404);
          expect(res.body.error).toBe('not_found');
        }
      },
    );

    it('POST cancel of an unknown id → 404', async () => {
      const res = await app.http('/v1/generations/00000000-0000-4000-8000-000000000000/cancel', {
        method: 'POST',
        headers: auth,
      });
      expect(res.status).toBe(404);
    });
  });
});
