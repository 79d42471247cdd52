import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { ComfyTamperProxy } from '../bad-input/support/comfyui-tamper-proxy';

const ROOT = join(__dirname, '../..');
const HOSTILE_PROMPT = '../../../etc/passwd&type=input&filename=secret.png';

function sourceOf(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
}

function findAll(node: ts.Node, test: (n: ts.Node) => boolean, out: ts.Node[] = []): ts.Node[] {
  if (test(node)) out.push(node);
  ts.forEachChild(node, (child) => void findAll(child, test, out));
  return out;
}

/**
 * GET /view fetches a file from the ComfyUI server's disk. Its name must only ever come from what ComfyUI itself
 * reported for the prompt (history / `executed` outputs), never from anything a user sent, and it must travel as
 * one encoded query parameter, so even a hostile name from a compromised server cannot add parameters.
 */
describe('/view file names come only from ComfyUI’s outputs', () => {
  it('the executor calls view() only on refs taken from the prompt result', () => {
    const executor = sourceOf('src/modules/gpu/runner/comfyui.executor.ts');
    const calls = findAll(
      executor,
      (n) => ts.isCallExpression(n) && /\.client\.view$/.test(n.expression.getText(executor)),
    ) as ts.CallExpression[];
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.arguments[0]!.getText(executor)).toBe('ref');
    let loop: ts.Node | undefined = call;
    while (loop && !ts.isForOfStatement(loop)) loop = loop.parent;
    expect(loop).toBeDefined();
    const forOf = loop as ts.ForOfStatement;
    expect(forOf.initializer.getText(executor)).toBe('const ref');
    expect(forOf.expression.getText(executor)).toBe('refs');
    const refsDecl = findAll(
      executor,
      (n) => ts.isVariableDeclaration(n) && n.name.getText(executor) === 'refs',
    ) as ts.VariableDeclaration[];
    expect(refsDecl).toHaveLength(1);
    expect(refsDecl[0]!.initializer!.getText(executor)).toMatch(
      /^wanted \? \(result\.outputs\[wanted\]\?\.images \?\? \[\]\) : result\.images$/,
    );
    // `result` is what ComfyUI reported (PromptResult), and `wanted` is the template's output node, not an input.
    expect(executor.getFullText()).toMatch(/const wanted = job\.template\.output\?\.node;/);
  });

  it('no other code in src/ fetches /view', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const rel = `${dir}/${entry.name}`;
        if (entry.isDirectory()) walk(rel);
        else if (rel.endsWith('.ts') && !rel.includes('/tools/comfyui-sim/')) {
          const text = readFileSync(join(ROOT, rel), 'utf8');
          if (/['"`]\/view\?/.test(text) && rel !== 'src/modules/gpu/comfyui/comfyui.client.ts') offenders.push(rel);
          if (/\.client\.view\(/.test(text) && rel !== 'src/modules/gpu/runner/comfyui.executor.ts')
            offenders.push(rel);
        }
      }
    };
    walk('src');
    expect(offenders).toEqual([]);
    const client = readFileSync(join(ROOT, 'src/modules/gpu/comfyui/comfyui.client.ts'), 'utf8');
    expect(client).toMatch(
      /new URLSearchParams\(\{ filename: ref\.filename, subfolder: ref\.subfolder, type: ref\.type \}\)/,
    );
  });

  describe('on the wire', () => {
    let sim: ComfyUiSimulator;
    let proxy: ComfyTamperProxy;
    let app: TestApp;

    beforeAll(async () => {
      // No WebSocket: the outputs come from /history, which the proxy can rewrite.
      sim = new ComfyUiSimulator({ stepMs: 1, acceptWebSockets: false });
      await sim.start({ port: 0, host: '127.0.0.1' });
      proxy = new ComfyTamperProxy(sim.url);
      await proxy.start();
      app = await startTestApp({ ROLE: 'api,gpu,projector', COMFYUI_URLS: proxy.url, USER_MAX_ACTIVE: '20' });
    });

    afterEach(() => proxy.clear());

    afterAll(async () => {
      await app.stop();
      await proxy.stop();
      await sim.stop();
    });

    async function run(prompt: string) {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        headers: { 'x-user-id': 'user.with.dots' },
        json: { workflow: 'txt2img', inputs: { prompt, width: 64, height: 64, steps: 2 } },
      });
      expect(res.status).toBe(202);
      return pollUntil(
        async () => (await app.http(`/v1/generations/${res.body.id}`)).body,
        (v) => ['succeeded', 'failed'].includes(v.status),
        { timeoutMs: 20_000 },
      );
    }

    const viewRequests = () =>
      proxy.seen.filter((s) => s.url.startsWith('/view')).map((s) => new URL(s.url, 'http://x').searchParams);

    it('a hostile prompt never reaches /view; the name fetched is the one ComfyUI reported', async () => {
      const reported: string[] = [];
      proxy.tamper(/^\/history\//, {
        kind: 'rewrite',
        rewrite: (a) => {
          const body = JSON.parse(a.body.toString('utf8')) as Record<
            string,
            { outputs?: Record<string, { images?: { filename: string }[] }> }
          >;
          for (const entry of Object.values(body)) {
            for (const output of Object.values(entry.outputs ?? {}))
              for (const image of output.images ?? []) reported.push(image.filename);
          }
          return a;
        },
      });
      const view = await run(HOSTILE_PROMPT);
      expect(view.status).toBe('succeeded');
      const fetched = viewRequests().map((p) => p.get('filename'));
      expect(fetched.length).toBeGreaterThan(0);
      for (const name of fetched) {
        expect(reported).toContain(name);
        expect(name).not.toMatch(/passwd|secret|\.\./);
      }
    });

    it('a hostile output name from ComfyUI travels as one encoded parameter (no parameter injection)', async () => {
      const hostile = 'x.png&type=input&filename=../../secret.png';
      proxy.tamper(/^\/history\//, {
        kind: 'rewrite',
        rewrite: (a) => {
          const body = JSON.parse(a.body.toString('utf8')) as Record<
            string,
            { outputs?: Record<string, { images?: { filename: string; subfolder: string; type: string }[] }> }
          >;
          for (const entry of Object.values(body)) {
            for (const output of Object.values(entry.outputs ?? {})) {
              for (const image of output.images ?? [])
                Object.assign(image, { filename: hostile, subfolder: 'sub&type=temp', type: 'output' });
            }
          }
          return { ...a, body: Buffer.from(JSON.stringify(body)) };
        },
      });
      const before = viewRequests().length;
      const view = await run('an honest prompt');
      expect(view.status).toBe('failed'); // the simulator has no such file: a clear "not found", not a crash
      const params = viewRequests().slice(before);
      expect(params.length).toBeGreaterThan(0);
      for (const p of params) {
        expect(p.getAll('filename')).toEqual([hostile]);
        expect(p.getAll('type')).toEqual(['output']);
        expect(p.getAll('subfolder')).toEqual(['sub&type=temp']);
      }
    });
  });
});
