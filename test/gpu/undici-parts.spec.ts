import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadFormData, Pool } from '../../src/modules/gpu/comfyui/undici-parts';

/**
 * The ComfyUI client loads undici's Pool and FormData from the package's files rather than its index (8 MB less in
 * every gpu process). These are the classes the index exports, with the request API on them: an undici upgrade that
 * moves or changes the files fails here, not at the first job.
 */
describe('undici parts', () => {
  let server: Server;
  let origin: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        const body = Buffer.concat(chunks).toString('latin1');
        res.end(JSON.stringify({ contentType: req.headers['content-type'] ?? '', body }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  // Runs before anything here loads undici's index, which would put the request API on the Pool itself.
  it('send a multipart upload through a Pool', async () => {
    const pool = new Pool(origin, { connections: 1 });
    try {
      const FormData = loadFormData();
      const form = new FormData();
      form.append('image', new Blob([Buffer.from('PNGBYTES')]), 'in.png');
      form.append('overwrite', 'true');
      const res = await pool.request({ method: 'POST', path: '/upload/image', body: form });
      const echoed = (await res.body.json()) as { contentType: string; body: string };
      expect(res.statusCode).toBe(200);
      expect(echoed.contentType).toMatch(/^multipart\/form-data; boundary=/);
      expect(echoed.body).toContain('filename="in.png"');
      expect(echoed.body).toContain('PNGBYTES');
      expect(echoed.body).toContain('name="overwrite"');
    } finally {
      await pool.close();
    }
  });

  it('are the classes undici exports', async () => {
    const undici = await import('undici');
    expect(Pool).toBe(undici.Pool);
    expect(loadFormData()).toBe(undici.FormData);
  });
});
