import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** An event item as a Sentry SDK sent it, with the raw envelope text it came in. */
export interface ReceivedSentryEvent {
  event: {
    event_id?: string;
    message?: string;
    level?: string;
    tags?: Record<string, string>;
    exception?: { values?: { type?: string; value?: string }[] };
    [key: string]: unknown;
  };
  raw: string;
}

/**
 * A minimal Sentry ingest endpoint on 127.0.0.1: POST /api/<project>/envelope/ (gzip or plain), the envelope format
 * SDKs send (a header line, then item header and payload lines). Keeps every `event` item and every raw body, so a
 * test can assert both what arrived and that no secret is anywhere in what was sent.
 */
export class SentryIngest {
  readonly events: ReceivedSentryEvent[] = [];
  readonly bodies: string[] = [];
  private server?: Server;

  /** A DSN pointing at this endpoint, with the given public key. */
  async start(publicKey: string, projectId = 42): Promise<string> {
    this.server = createServer((req, res) => {
      void this.receive(req).then(
        (status) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end('{}');
        },
        () => {
          res.writeHead(400);
          res.end();
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://${publicKey}@127.0.0.1:${(this.server!.address() as AddressInfo).port}/${projectId}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async receive(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || !/^\/api\/\d+\/envelope\/?(\?|$)/.test(req.url ?? '')) return 404;
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const raw = body.toString('utf8');
    this.bodies.push(raw);
    const lines = raw.split('\n');
    // Line 0 is the envelope header; then pairs of item header and payload.
    for (let i = 1; i + 1 < lines.length; i += 2) {
      const header = JSON.parse(lines[i]!) as { type?: string };
      if (header.type === 'event') this.events.push({ event: JSON.parse(lines[i + 1]!), raw });
    }
    return 200;
  }
}
