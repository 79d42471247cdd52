import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What to do with one request: answer instead of ComfyUI, rewrite ComfyUI's answer, or cut the connection. */
export type TamperAction =
  | { kind: 'answer'; status: number; body: string | Buffer; headers?: Record<string, string> }
  | { kind: 'rewrite'; rewrite: (upstream: UpstreamAnswer) => UpstreamAnswer }
  | { kind: 'drop' };

interface Rule {
  method?: string;
  path: RegExp;
  action: TamperAction;
  left: number;
}

export interface SeenRequest {
  method: string;
  url: string;
  status: number;
}

/** Frames to slip in front of ComfyUI's own on every socket: garbage the client must shrug off. */
export type FrameInjection = { data: string | Buffer; binary: boolean }[];

/**
 * A man in the middle between the service and a ComfyUI (simulator): HTTP and the `/ws` WebSocket are passed
 * through, except where a rule answers instead, rewrites the answer, or drops the connection — ComfyUI going
 * wrong in the ways a real server (or the proxy in front of it) does. Every request is recorded.
 */
export class ComfyTamperProxy {
  private server?: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly rules: Rule[] = [];
  private readonly sockets = new Set<WebSocket>();
  readonly seen: SeenRequest[] = [];
  /** Sent before every frame ComfyUI sends (while set). */
  injectBeforeEachFrame: FrameInjection = [];

  constructor(private readonly upstream: string) {}

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('proxy not started');
    return `http://127.0.0.1:${address.port}`;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.route(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return this.url;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Applies `action` to the next `times` requests matching (method and) path. */
  tamper(path: RegExp, action: TamperAction, { method, times = Infinity }: { method?: string; times?: number } = {}) {
    this.rules.push({ path, action, method, left: times });
  }

  clear(): void {
    this.rules.length = 0;
    this.injectBeforeEachFrame = [];
  }

  private take(method: string, url: string): TamperAction | undefined {
    const rule = this.rules.find((r) => r.left > 0 && (!r.method || r.method === method) && r.path.test(url));
    if (!rule) return undefined;
    rule.left--;
    return rule.action;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const action = this.take(method, url);
    if (action?.kind === 'drop') {
      this.seen.push({ method, url, status: 0 });
      res.socket?.destroy();
      return;
    }
    if (action?.kind === 'answer') {
      this.seen.push({ method, url, status: action.status });
      res.writeHead(action.status, action.headers ?? { 'content-type': 'application/json' }).end(action.body);
      return;
    }
    let answer: UpstreamAnswer;
    try {
      answer = await this.forward(method, url, req.headers, body);
    } catch {
      this.seen.push({ method, url, status: 0 });
      res.socket?.destroy();
      return;
    }
    if (action?.kind === 'rewrite') answer = action.rewrite(answer);
    this.seen.push({ method, url, status: answer.status });
    const { 'transfer-encoding': _chunked, ...kept } = answer.headers;
    const headers = { ...kept, 'content-length': String(answer.body.length) };
    res.writeHead(answer.status, headers).end(answer.body);
  }

  private forward(
    method: string,
    url: string,
    headers: IncomingMessage['headers'],
    body: Buffer,
  ): Promise<UpstreamAnswer> {
    const target = new URL(url, this.upstream);
    return new Promise((resolve, reject) => {
      const out = request(
        target,
        { method, headers: { ...headers, host: target.host, connection: 'close' } },
        (upstream) => {
          const parts: Buffer[] = [];
          upstream.on('data', (c: Buffer) => parts.push(c));
          upstream.on('end', () => {
            const flat: Record<string, string> = {};
            for (const [k, v] of Object.entries(upstream.headers)) {
              if (typeof v === 'string' && k !== 'connection' && k !== 'keep-alive') flat[k] = v;
            }
            resolve({ status: upstream.statusCode ?? 502, headers: flat, body: Buffer.concat(parts) });
          });
          upstream.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = new URL(req.url ?? '/ws', this.upstream.replace(/^http/, 'ws'));
    const upstream = new WebSocket(target);
    upstream.on('error', () => socket.destroy());
    upstream.once('open', () => {
      this.wss.handleUpgrade(req, socket, head, (client) => {
        this.sockets.add(client);
        this.sockets.add(upstream);
        upstream.on('message', (data: RawData, isBinary: boolean) => {
          for (const frame of this.injectBeforeEachFrame) {
            if (client.readyState === WebSocket.OPEN) client.send(frame.data, { binary: frame.binary });
          }
          if (client.readyState === WebSocket.OPEN) client.send(data as Buffer, { binary: isBinary });
        });
        client.on('message', (data: RawData, isBinary: boolean) => {
          if (upstream.readyState === WebSocket.OPEN) upstream.send(data as Buffer, { binary: isBinary });
        });
        const closeBoth = () => {
          client.terminate();
          upstream.terminate();
          this.sockets.delete(client);
          this.sockets.delete(upstream);
        };
        client.on('close', closeBoth);
        upstream.on('close', closeBoth);
        client.on('error', closeBoth);
      });
    });
  }
}
