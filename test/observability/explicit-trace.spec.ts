import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { context, createContextKey, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { installTracing } from '../../src/common/observability/observability.hooks';
import { startTracing, type StartedTracing } from '../../src/common/observability/otel-tracing';
import { OtlpReceiver } from '../support/otlp-receiver';

const run = promisify(execFile);

const CLIENT = 3; // OTLP SpanKind: SPAN_KIND_CLIENT

/**
 * A handler's span reaches its ComfyUI calls and its events explicitly (a TraceHandle, the job id), not through an
 * async context: the workers run without one (an AsyncLocalStorage is paid on every promise of the process), and only
 * a process with the api role registers one, for its HTTP request spans.
 */
describe('tracing: a handler span passed explicitly', () => {
  const receiver = new OtlpReceiver();
  let endpoint = '';
  let comfy: Server;
  let comfyUrl = '';
  let started: StartedTracing | undefined;

  const start = (role: string): Promise<StartedTracing> =>
    startTracing({
      endpoint,
      protocol: 'http/json',
      serviceName: `units-${role}`,
      serviceVersion: 'test',
      role,
      instance: 'units',
      scrub: (text) => text,
    });

  beforeAll(async () => {
    endpoint = await receiver.start();
    comfy = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"queue_running":[],"queue_pending":[]}');
    });
    await new Promise<void>((resolve) => comfy.listen(0, '127.0.0.1', resolve));
    comfyUrl = `http://127.0.0.1:${(comfy.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    installTracing(undefined);
    await started?.shutdown();
    started = undefined;
    context.disable();
    trace.disable();
  });

  afterAll(async () => {
    await receiver.stop();
    comfy.closeAllConnections();
    await new Promise<void>((resolve) => comfy.close(() => resolve()));
  });

  it('a ComfyUI call and an event made with it are children of the handler span, even outside its async context', async () => {
    // In a process of its own: the OTLP exporter loads its HTTP transport with a dynamic import, which jest refuses.
    const script = `
      const { startTracing } = require('./src/common/observability/otel-tracing');
      const { installTracing, runJobHandler } = require('./src/common/observability/observability.hooks');
      const { ComfyHttp } = require('./src/modules/gpu/comfyui/comfyui-http');
      const { makeEnvelope } = require('./src/streams/envelope.codec');
      (async () => {
        const started = await startTracing({ endpoint: process.env.ENDPOINT, protocol: 'http/json', serviceName: 'units-gpu',
          serviceVersion: 'test', role: 'gpu', instance: 'units', scrub: (t) => t });
        installTracing(started.tracing);
        const http = new ComfyHttp({ baseUrl: process.env.COMFY, connections: 2, requestTimeoutMs: 5000, connectTimeoutMs: 5000 });
        let release;
        const gate = new Promise((resolve) => (release = resolve));
        // Continuations made before the handler runs: an async context would carry no span into them.
        const call = gate.then((handle) => http.getJson('/queue', { trace: handle }));
        const event = gate.then(() => makeEnvelope('job.accepted', { jobId: 'job-x', actor: 'units' }, {}));
        const envelope = { type: 'job.requested', jobId: 'job-x', correlationId: 'job-x', payload: { workflow: 'w' } };
        const place = { group: 'gpu', consumer: 'gpu-units-1', stream: 'units:requests', entryId: '1-0', deliveries: 1 };
        await runJobHandler(envelope, place, async (handle) => { release(handle); await Promise.all([call, event]); });
        await http.close();
        await started.shutdown();
        process.stdout.write('TRACEPARENT=' + (await event).traceparent + '\\n');
        process.exit(0);
      })().catch((err) => { console.error(err); process.exit(1); });
    `;
    const { stdout } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, ENDPOINT: endpoint, COMFY: comfyUrl },
      timeout: 60_000,
    });

    const spans = receiver.spansOfJob('job-x');
    const handler = spans.find((s) => s.name === 'gpu job.requested')!;
    const client = spans.find((s) => s.kind === CLIENT)!;
    expect(handler).toBeDefined();
    expect(client.parentSpanId).toBe(handler.spanId);
    expect(client.traceId).toBe(handler.traceId);
    expect(client.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `${comfyUrl}/queue`,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(comfyUrl).port),
      'http.response.status_code': 200,
    });
    // The event made for the job while its handler ran carries the handler span as its parent.
    expect(stdout).toContain(`TRACEPARENT=00-${handler.traceId}-${handler.spanId}-01`);
  });

  it('a gpu process has no async context; a process with the api role has one', async () => {
    const key = createContextKey('units');
    const seen = (): unknown => context.with(ROOT_CONTEXT.setValue(key, 1), () => context.active().getValue(key));
    started = await start('gpu');
    expect(seen()).toBeUndefined();
    await started.shutdown();
    context.disable();
    trace.disable();
    started = await start('api+projector');
    expect(seen()).toBe(1);
  });
});
