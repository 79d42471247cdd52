import { WebSocket, type RawData } from 'ws';
import { silentLogger, type Logger } from '../../../common/logger';
import { decodeBinaryFrame, type ComfyBinaryFrame } from './comfyui-binary-frame';
import { parseWsMessage, type ComfyWsMessage } from './comfyui-ws-message';

export interface ComfySocketOptions {
  baseUrl: string;
  clientId: string;
  logger?: Logger;
  /** First reconnect delay; doubles per failed attempt (with jitter) up to reconnectMaxMs. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  handshakeTimeoutMs?: number;
  /** Ping period; a socket that misses a whole period without a pong is cut and reconnected. */
  pingIntervalMs?: number;
  /** Announce preview metadata support, so previews carry their prompt id (event type 4). */
  previewMetadata?: boolean;
}

export interface ComfySocketEvents {
  onMessage(message: ComfyWsMessage): void;
  onBinary(frame: ComfyBinaryFrame): void;
  /** Connected (again): messages may have been missed while down. */
  onOpen(): void;
  onClose(): void;
}

const MAX_PAYLOAD = 64 * 1024 * 1024;

/**
 * The `/ws?clientId=` connection of one process to one instance, kept open with bounded exponential backoff
 * until close(). A new socket is only opened after the previous one has fully closed: ComfyUI drops the
 * clientId's registration whenever *any* socket with that id closes, so an overlapping old socket would
 * silently deafen the new one.
 */
export class ComfySocket {
  private ws: WebSocket | null = null;
  private open = false;
  private started = false;
  private closing: Promise<void> | null = null;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  private readonly openWaiters = new Set<(open: boolean) => void>();
  private readonly logger: Logger;
  /** When the last `status` frame arrived: every queue change is broadcast, so this proves we are registered. */
  private statusAt = 0;

  constructor(
    private readonly opts: ComfySocketOptions,
    private readonly events: ComfySocketEvents,
  ) {
    this.logger = opts.logger ?? silentLogger;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** A connection attempt is under way (not waiting in backoff). */
  get isConnecting(): boolean {
    return this.ws?.readyState === WebSocket.CONNECTING;
  }

  get lastStatusAt(): number {
    return this.statusAt;
  }

  /** Drops the current connection and connects again at once (used when the socket has gone deaf). */
  reconnect(): void {
    if (this.closing || !this.ws) return;
    this.attempt = 0;
    this.ws.terminate();
  }

  /** Starts connecting (idempotent). */
  start(): void {
    if (this.started || this.closing) return;
    this.started = true;
    this.connect();
  }

  /** Resolves true once open; false after `timeoutMs`, when the attempt fails, or on close(). */
  waitOpen(timeoutMs: number): Promise<boolean> {
    if (this.open) return Promise.resolve(true);
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (open: boolean): void => {
        clearTimeout(timer);
        this.openWaiters.delete(done);
        resolve(open);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.openWaiters.add(done);
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopPing();
    for (const waiter of [...this.openWaiters]) waiter(false);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.terminate();
    });
  }

  private url(): string {
    const url = new URL(this.opts.baseUrl.replace(/\/+$/, '') + '/ws');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', this.opts.clientId);
    return url.toString();
  }

  private connect(): void {
    if (this.closing) return;
    const ws = new WebSocket(this.url(), {
      handshakeTimeout: this.opts.handshakeTimeoutMs ?? 5_000,
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD,
    });
    this.ws = ws;
    ws.on('open', () => {
      this.attempt = 0;
      this.open = true;
      if (this.opts.previewMetadata ?? true) {
        ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
      }
      this.startPing(ws);
      for (const waiter of [...this.openWaiters]) waiter(true);
      this.logger.debug({ url: this.opts.baseUrl }, 'comfyui socket open');
      this.events.onOpen();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => this.onData(data, isBinary));
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('error', (err) => {
      this.logger.debug({ err, url: this.opts.baseUrl }, 'comfyui socket error');
    });
    ws.on('close', () => {
      const wasOpen = this.open;
      this.open = false;
      for (const waiter of [...this.openWaiters]) waiter(false);
      this.stopPing();
      if (this.ws === ws) this.ws = null;
      if (wasOpen) this.events.onClose();
      this.scheduleReconnect();
    });
  }

  private onData(data: RawData, isBinary: boolean): void {
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    try {
      if (isBinary) {
        this.events.onBinary(decodeBinaryFrame(bytes));
        return;
      }
      const message = parseWsMessage(bytes.toString('utf8'));
      if (message.type === 'status') this.statusAt = Date.now();
      this.events.onMessage(message);
    } catch (err) {
      this.logger.warn({ err, url: this.opts.baseUrl }, 'comfyui socket: bad frame ignored');
    }
  }

  private scheduleReconnect(): void {
    if (this.closing) return;
    const min = this.opts.reconnectMinMs ?? 200;
    const max = this.opts.reconnectMaxMs ?? 10_000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private startPing(ws: WebSocket): void {
    this.stopPing();
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      if (this.awaitingPong) {
        this.logger.warn({ url: this.opts.baseUrl }, 'comfyui socket: no pong, reconnecting');
        ws.terminate();
        return;
      }
      this.awaitingPong = true;
      ws.ping();
    }, this.opts.pingIntervalMs ?? 15_000);
    this.pingTimer.unref();
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
