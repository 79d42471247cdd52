import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from './deadline';

export interface BalancerStats {
  requests: number;
  /** Attempts that failed (connection refused, killed mid-request, 5xx) and went to another replica. */
  failovers: number;
  /** Requests no replica answered within the retry window (Telegram would redeliver them). */
  gaveUp: number;
}

/**
 * The load balancer that owns TELEGRAM_WEBHOOK_URL in front of the bot replicas: round robin, and a request
 * whose replica refuses the connection, dies mid-request or answers 5xx is sent to the next one (nginx'
 * proxy_next_upstream; Telegram itself would redeliver, only later). A replica killed after it handled an update but before it answered therefore makes a duplicate
 * delivery — exactly what the update_id idempotency must absorb.
 */
export class WebhookBalancer {
  private server?: Server;
  private next = 0;
  readonly stats: BalancerStats = { requests: 0, failovers: 0, gaveUp: 0 };

  constructor(
    private readonly targets: () => readonly number[],
    private readonly retryWindowMs = 30_000,
  ) {}

  async start(): Promise<number> {
    const server = createServer((req, res) => void this.route(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'x-telegram-bot-api-secret-token']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const until = Date.now() + this.retryWindowMs;
    while (Date.now() < until) {
      const ports = this.targets();
      if (ports.length > 0) {
        const port = ports[this.next++ % ports.length]!;
        try {
          const answer = await fetch(`http://127.0.0.1:${port}${req.url ?? '/'}`, {
            method: req.method ?? 'POST',
            headers,
            body: req.method === 'GET' ? undefined : body,
            signal: AbortSignal.timeout(20_000),
          });
          const bytes = Buffer.from(await answer.arrayBuffer());
          // A 5xx (e.g. the replica lost Redis for a moment): Telegram would redeliver; so does the balancer, sooner.
          if (answer.status >= 500) throw new Error(`replica answered ${answer.status}`);
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(bytes);
          return;
        } catch {
          this.stats.failovers++;
        }
      }
      await sleep(100);
    }
    this.stats.gaveUp++;
    res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"no bot replica answered"}');
  }
}
