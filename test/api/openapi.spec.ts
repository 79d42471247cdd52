import { startTestApp, type TestApp } from '../support/app-harness';

const KEY = 'openapi-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };

type Schema = {
  $ref?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  nullable?: boolean;
};
type Doc = {
  openapi: string;
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>
  >;
  components: { schemas: Record<string, Schema>; securitySchemes?: Record<string, unknown> };
};

/** Just enough JSON Schema to hold a real answer against the documented one: types, required, no strangers. */
function conformity(doc: Doc, schema: Schema, value: unknown, path = '$'): string[] {
  if (schema.$ref) return conformity(doc, doc.components.schemas[schema.$ref.split('/').pop()!]!, value, path);
  if (value === null) return schema.nullable ? [] : [`${path}: null`];
  const kind = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (schema.type && schema.type !== kind && !(schema.type === 'number' && kind === 'integer')) {
    return [`${path}: ${kind}, documented ${schema.type}`];
  }
  if (kind === 'array' && schema.items) {
    return (value as unknown[]).flatMap((v, i) => conformity(doc, schema.items!, v, `${path}[${i}]`));
  }
  if (kind !== 'object' || !schema.properties) return [];
  const object = value as Record<string, unknown>;
  const problems = (schema.required ?? []).filter((k) => !(k in object)).map((k) => `${path}.${k}: missing`);
  for (const [key, v] of Object.entries(object)) {
    const property = schema.properties[key];
    if (!property) problems.push(`${path}.${key}: not documented`);
    else problems.push(...conformity(doc, property, v, `${path}.${key}`));
  }
  return problems;
}

describe('OpenAPI document (GET /openapi.json, /docs)', () => {
  let app: TestApp;
  let doc: Doc;

  beforeAll(async () => {
    app = await startTestApp({ ROLE: 'api,projector', API_KEYS: KEY, USER_MAX_ACTIVE: '1' });
    const res = await app.http('/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body as Doc;
  });

  afterAll(async () => {
    await app.stop();
  });

  it('lists every /v1 route the app serves, with its method, and the bearer auth', () => {
    expect(doc.openapi).toMatch(/^3\./);
    const express = app.app.getHttpAdapter().getInstance() as {
      router?: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
      _router?: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
    };
    const stack = (express.router ?? express._router)!.stack;
    const served = stack
      .filter((layer) => layer.route?.path.startsWith('/v1'))
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map((m) => `${m} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`),
      );
    expect(served.length).toBeGreaterThanOrEqual(6);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(documented.sort()).toEqual(expect.arrayContaining(served.sort()));
    expect(doc.components.securitySchemes).toHaveProperty('apiKey');
  });

  it("describes each installed workflow's inputs as the request body's variants", () => {
    const body = doc.paths['/v1/generations']!.post as unknown as {
      requestBody: { content: { 'application/json': { schema: { oneOf: { $ref: string }[] } } } };
    };
    const variants = body.requestBody.content['application/json'].schema.oneOf.map((v) => v.$ref.split('/').pop());
    expect(variants).toEqual(expect.arrayContaining(['GenerationRequest_txt2img', 'GenerationRequest_echo-invert']));
    const txt2img = doc.components.schemas.Inputs_txt2img!;
    expect(txt2img.required).toEqual(expect.arrayContaining(['prompt']));
    expect(Object.keys(txt2img.properties!)).toEqual(expect.arrayContaining(['prompt', 'width', 'height']));
  });

  it('/docs renders the browsable UI', async () => {
    const res = await fetch(`${app.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('swagger-ui');
  });

  it('the errors the API really answers have the documented shape, at documented statuses', async () => {
    const post = (json: unknown, headers: Record<string, string> = auth) =>
      app.http('/v1/generations', { method: 'POST', json, headers });
    const cases: { op: [string, string]; res: { status: number; body: unknown } }[] = [];
    cases.push({ op: ['/v1/generations', 'post'], res: await post({ workflow: 'txt2img', inputs: { width: -1 } }) });
    cases.push({ op: ['/v1/generations', 'post'], res: await post({ workflow: 'echo-invert' }, {}) });
    cases.push({
      op: ['/v1/generations/{id}', 'get'],
      res: await app.http('/v1/generations/00000000-0000-4000-8000-000000000000', { headers: auth }),
    });
    const first = await post({ workflow: 'echo-invert', inputs: {} }, { ...auth, 'idempotency-key': 'k1' });
    expect(first.status).toBe(202);
    cases.push({
      op: ['/v1/generations', 'post'],
      res: await post({ workflow: 'echo-invert', inputs: { prompt: 'other' } }, { ...auth, 'idempotency-key': 'k1' }),
    });
    cases.push({ op: ['/v1/generations', 'post'], res: await post({ workflow: 'echo-invert', inputs: {} }) }); // 429
    cases.push({
      op: ['/v1/generations/{id}/result', 'get'],
      res: await app.http(`/v1/generations/${first.body.id as string}/result`, { headers: auth }),
    });
    expect(cases.map((c) => c.res.status)).toEqual([400, 401, 404, 422, 429, 409]);
    for (const { op, res } of cases) {
      const responses = doc.paths[op[0]]![op[1]]!.responses;
      const documented = responses[String(res.status)];
      expect({ op, status: res.status, documented: documented !== undefined }).toMatchObject({ documented: true });
      const schema = documented!.content!['application/json']!.schema;
      expect({ op, status: res.status, problems: conformity(doc, schema, res.body) }).toMatchObject({ problems: [] });
    }
    // The 202 itself matches its model too.
    const accepted = doc.paths['/v1/generations']!.post!.responses['202']!.content!['application/json']!.schema;
    expect(conformity(doc, accepted, first.body)).toEqual([]);
  });
});
