import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { encodePng } from '../../src/common/png-encoder';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

const KEY = 'bad-input-key-0123456789abcdef';
const OTHER_KEY = 'bad-input-other-key-9876543210';
const auth = { authorization: `Bearer ${KEY}` };
const JSON_TYPE = { 'content-type': 'application/json' };
const GOOD = { workflow: 'txt2img', inputs: { prompt: 'a lighthouse', width: 64, height: 64, steps: 2 } };

interface RawRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | ReadableStream<Uint8Array>;
}

const png = (size = 8) => encodePng(size, size, new Uint8Array(size * size * 4).fill(90));
const b64 = (text: string) => Buffer.from(text).toString('base64');
const submitJson = (inputs: unknown, extra: Record<string, unknown> = {}): RawRequest => ({
  headers: { ...auth, ...JSON_TYPE },
  body: JSON.stringify({ workflow: 'txt2img', inputs, ...extra }),
});
const body = (json: unknown): RawRequest => ({ headers: { ...auth, ...JSON_TYPE }, body: JSON.stringify(json) });
const raw = (text: string | Buffer, headers: Record<string, string> = JSON_TYPE): RawRequest => ({
  headers: { ...auth, ...headers },
  body: text,
});

/**
 * What a client can get wrong on the HTTP API, case by case: each gets a 4xx with a JSON error (naming the field
 * where there is one), nothing is queued, the key is never echoed, and the service keeps serving — the last test
 * submits a good job after all of them and sees it succeed.
 */
describe('bad HTTP requests', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      API_KEYS: `${KEY},${OTHER_KEY}`,
      USER_MAX_ACTIVE: '100',
      COMFYUI_SIM_STEP_MS: '1',
      MAX_IMAGE_BYTES: String(256 * 1024),
    });
  });

  afterAll(async () => {
    await app.stop();
  });

  async function send(req: RawRequest) {
    const res = await fetch(`${app.url}${req.path ?? '/v1/generations'}`, {
      method: req.method ?? 'POST',
      headers: req.headers ?? {},
      body: req.body as never,
      ...(req.body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json, type: res.headers.get('content-type') ?? '' };
  }

  const queued = () => app.redis.xlen(`${app.prefix}jobs:requests`);

  async function expectRefused(req: RawRequest, status: number, field?: string) {
    const before = await queued();
    const res = await send(req);
    // The body rides along so a failure shows what the service said.
    expect({ status: res.status, text: res.text.slice(0, 300) }).toEqual({ status, text: expect.any(String) });
    expect(res.type).toContain('application/json');
    expect(res.json).toMatchObject({ statusCode: res.status, error: expect.any(String), message: expect.any(String) });
    if (field !== undefined) expect(res.json.field).toBe(field);
    expect(res.text).not.toContain(KEY);
    expect(await queued()).toBe(before);
    return res;
  }

  describe('malformed bodies → 400 naming the body', () => {
    it.each<[string, RawRequest]>([
      ['truncated JSON', raw('{"workflow":"txt2img"')],
      ['a trailing comma', raw('{"workflow":"txt2img",}')],
      ['single quotes', raw("{'workflow':'txt2img'}")],
      ['a bare JSON null (not an object)', raw('null')],
      ['a bare JSON string', raw('"txt2img"')],
      ['JSON with a NUL byte outside strings', raw('{"workflow":"txt2img"}\u0000')],
    ])('%s', async (_name, req) => {
      await expectRefused(req, 400, 'body');
    });

    // Was a bug (fixed): body-parser's inflate failure is an http-errors 400 without a `type`, which
    // asBodyParserError (src/http/http-error.filter.ts) does not recognise: the client's mistake becomes a 500.
    it('gzip declared but the body is not gzip → 400', async () => {
      await expectRefused(raw('{"workflow":"txt2img"}', { ...JSON_TYPE, 'content-encoding': 'gzip' }), 400, 'body');
    });

    it('an unsupported charset → 415', async () => {
      await expectRefused(raw('{"workflow":"txt2img"}', { 'content-type': 'application/json; charset=latin1' }), 415);
    });

    it('an unknown content-encoding → 415', async () => {
      await expectRefused(raw('{"workflow":"txt2img"}', { ...JSON_TYPE, 'content-encoding': 'br-x' }), 415);
    });

    it.each<[string, RawRequest]>([
      ['a JSON array of requests', raw('[{"workflow":"txt2img"}]')],
      ['an empty body', raw('')],
      ['text/plain', raw(JSON.stringify(GOOD), { 'content-type': 'text/plain' })],
      ['a form', raw('workflow=txt2img&inputs[prompt]=x', { 'content-type': 'application/x-www-form-urlencoded' })],
      [
        'multipart garbage',
        raw('--b\r\nContent-Disposition: form-data; name="workflow"\r\n\r\ntxt2img\r\n', {
          'content-type': 'multipart/form-data; boundary=b',
        }),
      ],
    ])('%s → 400, nothing queued', async (_name, req) => {
      await expectRefused(req, 400);
    });

    const nested = (depth: number) =>
      raw(`{"workflow":"txt2img","inputs":{"prompt":"x","deep":${'['.repeat(depth)}${']'.repeat(depth)}}}`);

    it('1,000 levels of nesting → 400 naming the input', async () => {
      await expectRefused(nested(1_000), 400, 'inputs.deep');
    });

    // Was a bug (fixed): 5,000+ levels overflow the stack in Nest's ValidationPipe (stripProtoKeys) and in
    // class-transformer: a 500 for the client's mistake, and a stack overflow per request for ~10 KB of body.
    it('20,000 levels of nesting → 400', async () => {
      await expectRefused(nested(20_000), 400);
    });

    it('20,000 levels of nesting do not take the process down', async () => {
      const res = await send(nested(20_000));
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.text).not.toMatch(/RangeError|stack/i);
      expect((await send({ method: 'GET', path: '/health/live' })).status).toBe(200);
    });

    it('a valid gzip body is fine, a gzip bomb is cut at the body limit (413)', async () => {
      const bomb = gzipSync(
        Buffer.from(`{"workflow":"txt2img","inputs":{"prompt":"${'a'.repeat(40 * 1024 * 1024)}"}}`),
      );
      expect(bomb.length).toBeLessThan(200 * 1024);
      await expectRefused({ headers: { ...auth, ...JSON_TYPE, 'content-encoding': 'gzip' }, body: bomb }, 413, 'body');
    });

    it('a body over the limit without content-length (chunked) → 413', async () => {
      const chunk = new Uint8Array(1024 * 1024).fill(0x61);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('{"workflow":"txt2img","pad":"'));
          if (sent++ < 20) controller.enqueue(chunk);
          else controller.close();
        },
      });
      await expectRefused({ headers: { ...auth, ...JSON_TYPE }, body: stream }, 413, 'body');
    });
  });

  describe('wrong types and values → 400 naming the field', () => {
    it.each<[string, RawRequest, string]>([
      ['workflow: null', body({ workflow: null }), 'workflow'],
      ['workflow: an array', body({ workflow: ['txt2img'] }), 'workflow'],
      ['workflow: an object', body({ workflow: { name: 'txt2img' } }), 'workflow'],
      ['workflow: empty', body({ workflow: '' }), 'workflow'],
      ['workflow: 65 characters', body({ workflow: 'a'.repeat(65) }), 'workflow'],
      ['inputs: an array', body({ workflow: 'txt2img', inputs: ['x'] }), 'inputs'],
      ['priority: "yes"', submitJson({ prompt: 'x' }, { priority: 'yes' }), 'priority'],
      ['prompt: a number', submitJson({ prompt: 42 }), 'inputs.prompt'],
      ['prompt: an object (operator injection)', submitJson({ prompt: { $gt: '' } }), 'inputs.prompt'],
      ['prompt: empty', submitJson({ prompt: '' }), 'inputs.prompt'],
      ['prompt: one character over the limit', submitJson({ prompt: 'p'.repeat(2001) }), 'inputs.prompt'],
      ['prompt: 100 KB', submitJson({ prompt: 'p'.repeat(100 * 1024) }), 'inputs.prompt'],
      ['steps: 2.5', submitJson({ prompt: 'x', steps: 2.5 }), 'inputs.steps'],
      ['steps: "10"', submitJson({ prompt: 'x', steps: '10' }), 'inputs.steps'],
      ['steps: 101', submitJson({ prompt: 'x', steps: 101 }), 'inputs.steps'],
      ['width: -64', submitJson({ prompt: 'x', width: -64 }), 'inputs.width'],
      ['width: not a multiple of 8', submitJson({ prompt: 'x', width: 100 }), 'inputs.width'],
      ['seed: -1', submitJson({ prompt: 'x', seed: -1 }), 'inputs.seed'],
      ['seed: 1e300', submitJson({ prompt: 'x', seed: 1e300 }), 'inputs.seed'],
      ['cfg: true', submitJson({ prompt: 'x', cfg: true }), 'inputs.cfg'],
      [
        '10,000 unknown inputs',
        submitJson(Object.fromEntries([...Array(10_000).keys()].map((i) => [`k${i}`, i]))),
        'inputs.k0',
      ],
    ])('%s', async (_name, req, field) => {
      const res = await expectRefused(req, 400);
      expect(res.json.fields.map((f: { field: string }) => f.field)).toContain(field);
    });

    it('a prompt of 5 MB → 413 (over the body limit)', async () => {
      await expectRefused(submitJson({ prompt: 'p'.repeat(5 * 1024 * 1024) }), 413, 'body');
    });

    it('an input named __proto__ pollutes nothing (Nest strips the key before validation)', async () => {
      const payload = '{"workflow":"txt2img","inputs":{"prompt":"x","__proto__":{"polluted":true,"steps":100000}}}';
      const res = await send(raw(payload));
      expect([202, 400]).toContain(res.status);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).steps).toBeUndefined();
      if (res.status === 202) {
        const [entry] = (await app.redis.xrange(`${app.prefix}jobs:requests`, '-', '+')).filter(([, f]) =>
          f[1]!.includes(res.json.id),
        );
        const inputs = JSON.parse(entry![1][1]!).payload.inputs;
        expect(inputs).not.toHaveProperty('polluted');
        expect(inputs.steps).not.toBe(100000);
      }
    });
  });

  describe('images that are not images → 400 naming inputs.image', () => {
    const edit = (image: unknown) => body({ workflow: 'edit', inputs: { prompt: 'make it blue', image } });
    it.each<[string, unknown]>([
      ['base64 with characters outside the alphabet', '!!!!not*base64!!!!'],
      ['base64 of an HTML page', b64('<html><script>alert(1)</script></html>')],
      ['a data: URL of text/html', `data:text/html;base64,${b64('<b>hi</b>')}`],
      ['a data: URL that says PNG but holds text', `data:image/png;base64,${b64('just text, honestly')}`],
      [
        'an SVG (script-capable, not a raster image)',
        b64('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
      ],
      ['a GIF', b64('GIF89a\u0001\u0000\u0001\u0000\u0000\u0000\u0000;')],
      ['an empty string', ''],
      ['a number', 12345],
      ['an object with a url', { url: 'http://169.254.169.254/latest/meta-data' }],
      ['a file path', '../../../etc/passwd'],
      ['a file: URL', 'file:///etc/passwd'],
      ['an http URL (no server-side fetching)', 'http://127.0.0.1:6379/'],
      ['a PNG over MAX_IMAGE_BYTES', encodePng(256, 260, randomBytes(256 * 260 * 4)).toString('base64')],
    ])('%s', async (_name, image) => {
      await expectRefused(edit(image), 400, 'inputs.image');
    });

    it('a PNG that is only its 8-byte signature: refused up front, or the job fails with a reason', async () => {
      const res = await send(edit(png().subarray(0, 8).toString('base64')));
      expect([202, 400]).toContain(res.status);
      if (res.status === 400) {
        expect(res.json.field).toBe('inputs.image');
        return;
      }
      const view = await pollUntil(
        async () => (await app.http(`/v1/generations/${res.json.id}`, { headers: auth })).body,
        (v) => ['succeeded', 'failed', 'cancelled'].includes(v.status),
        { timeoutMs: 20_000 },
      );
      expect(view.status).toBe('failed');
      expect(view.error.message).toMatch(/\S/);
    });
  });

  describe('path-like and look-alike names', () => {
    it.each<[string, RawRequest, string]>([
      ['workflow "txt2img/../edit"', body({ workflow: 'txt2img/../edit' }), 'workflow'],
      ['workflow "..%2f..%2fetc"', body({ workflow: '..%2f..%2fetc' }), 'workflow'],
      ['workflow "TXT2IMG" (names are exact)', body({ workflow: 'TXT2IMG' }), 'workflow'],
      ['workflow "txt2іmg" (Cyrillic і)', body({ workflow: 'txt2іmg' }), 'workflow'],
      [
        'checkpoint "../../models/secret.safetensors"',
        submitJson({ prompt: 'x', checkpoint: '../../models/secret.safetensors' }),
        'inputs.checkpoint',
      ],
      [
        'checkpoint "/etc/passwd.ckpt"',
        submitJson({ prompt: 'x', checkpoint: '/etc/passwd.ckpt' }),
        'inputs.checkpoint',
      ],
      [
        'checkpoint "C:\\\\models\\\\x.ckpt"',
        submitJson({ prompt: 'x', checkpoint: 'C:\\models\\x.ckpt' }),
        'inputs.checkpoint',
      ],
    ])('%s → 400', async (_name, req, field) => {
      await expectRefused(req, 400, field);
    });

    it.each([
      '/v1/generations/..%2F..%2Fetc%2Fpasswd',
      '/v1/generations/%00',
      `/v1/generations/${'a'.repeat(8 * 1024)}`,
      '/v1/generations/00000000-0000-4000-8000-000000000000/result?index=0',
    ])('GET %s → 404 JSON', async (path) => {
      const res = await send({ method: 'GET', path, headers: auth });
      expect(res.status).toBe(404);
      expect(res.json).toMatchObject({ error: 'not_found' });
    });
  });

  describe('authentication → 401, the key never echoed', () => {
    it.each<[string, Record<string, string>, string?]>([
      ['no Authorization header', {}],
      ['"Bearer" without a key', { authorization: 'Bearer' }],
      ['Basic credentials', { authorization: `Basic ${b64(`user:${KEY}`)}` }],
      ['the key in the query string instead', {}, `?api_key=${KEY}`],
      ['the key with one character changed', { authorization: `Bearer ${KEY.slice(0, -1)}X` }],
      ['a prefix of the key', { authorization: `Bearer ${KEY.slice(0, 16)}` }],
      ['the key with a suffix', { authorization: `Bearer ${KEY}x` }],
      ['both keys, comma-joined', { authorization: `Bearer ${KEY},${OTHER_KEY}` }],
      ['an 8 KB bearer token', { authorization: `Bearer ${'k'.repeat(8 * 1024)}` }],
    ])('%s', async (_name, headers, query = '') => {
      const res = await expectRefused(
        { path: `/v1/generations${query}`, headers: { ...headers, ...JSON_TYPE }, body: JSON.stringify(GOOD) },
        401,
      );
      expect(res.text).not.toContain(OTHER_KEY);
    });
  });

  describe('headers and query → 400 naming them', () => {
    it.each<[string, Record<string, string>, string]>([
      ['Idempotency-Key of 256 characters', { 'idempotency-key': 'k'.repeat(256) }, 'Idempotency-Key'],
      ['Idempotency-Key with a space', { 'idempotency-key': 'two words' }, 'Idempotency-Key'],
      ['X-User-Id with a path', { 'x-user-id': '../admin' }, 'X-User-Id'],
      ['X-User-Id of 65 characters', { 'x-user-id': 'u'.repeat(65) }, 'X-User-Id'],
    ])('%s', async (_name, headers, field) => {
      await expectRefused({ headers: { ...auth, ...JSON_TYPE, ...headers }, body: JSON.stringify(GOOD) }, 400, field);
    });

    it.each(['99999', '1e3', '-0', '0x1'])('GET …/result?index=%s → 400 naming index', async (index) => {
      const created = await send(body(GOOD));
      expect(created.status).toBe(202);
      const res = await send({
        method: 'GET',
        path: `/v1/generations/${created.json.id}/result?index=${index}`,
        headers: auth,
      });
      expect(res.status).toBe(400);
      expect(res.json.field).toBe('index');
    });
  });

  it('after every bad request: still serving, and a good job succeeds', async () => {
    expect((await send({ method: 'GET', path: '/health/live' })).status).toBe(200);
    const created = await send(body(GOOD));
    expect(created.status).toBe(202);
    const done = await pollUntil(
      async () => (await app.http(`/v1/generations/${created.json.id}`, { headers: auth })).body,
      (v) => v.status === 'succeeded' || v.status === 'failed',
      { timeoutMs: 20_000 },
    );
    expect(done.status).toBe('succeeded');
  });
});
