import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { JsonObject } from './comfyui-sim.types';

export const MAX_UPLOAD_SIZE = 104_857_600;
export const SERVER_FEATURES = { supports_preview_metadata: true, max_upload_size: MAX_UPLOAD_SIZE };

/** Binary event types of comfy_execution/protocol.py (UNENCODED_PREVIEW_IMAGE goes out as PREVIEW_IMAGE). */
export const BINARY_PREVIEW_IMAGE = 1;
export const BINARY_TEXT = 3;
export const BINARY_PREVIEW_IMAGE_WITH_METADATA = 4;

export interface HubState {
  /** `{exec_info: {queue_remaining}}` */
  queueInfo(): JsonObject;
  /** server.client_id / server.last_node_id: a reconnecting executing client is told its current node. */
  executing(): { clientId: string | null; lastNodeId: string | null };
}

/** `[type:u32][format:u32][image]`, format 1 = JPEG, 2 = PNG. */
export function previewFrame(image: Buffer, imageType: 'image/jpeg' | 'image/png'): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(BINARY_PREVIEW_IMAGE, 0);
  head.writeUInt32BE(imageType === 'image/png' ? 2 : 1, 4);
  return Buffer.concat([head, image]);
}

/** `[type:u32][metadata_len:u32][metadata json][image]`. */
export function previewFrameWithMetadata(image: Buffer, metadata: JsonObject): Buffer {
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(BINARY_PREVIEW_IMAGE_WITH_METADATA, 0);
  head.writeUInt32BE(json.length, 4);
  return Buffer.concat([head, json, image]);
}

/**
 * server.py's socket table: one socket per sid. A second connection with the same clientId takes over the sid; the
 * old one stays open but hears nothing. When any socket closes its sid is removed, even if a newer socket owns it
 * now (ComfyUI's `finally: self.sockets.pop(sid)`), which silences the newer socket too.
 */
export class SimSocketHub {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly sockets = new Map<string, WebSocket>();
  private readonly featureFlags = new Map<string, JsonObject>();
  /** Sockets cut by terminateAll(): their tables are already cleared, so their close must not touch newer ones. */
  private readonly cut = new WeakSet<WebSocket>();

  constructor(private readonly state: HubState) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, clientId: string): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, clientId));
  }

  private onConnection(ws: WebSocket, requested: string): void {
    const sid = requested !== '' ? requested : randomUUID().replace(/-/g, '');
    this.sockets.set(sid, ws);
    this.featureFlags.set(sid, {});
    this.send('status', { status: this.state.queueInfo(), sid }, sid);
    const { clientId, lastNodeId } = this.state.executing();
    if (clientId === sid && lastNodeId !== null) this.send('executing', { node: lastNodeId }, sid);
    let firstMessage = true;
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      let data: unknown;
      try {
        const bytes = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
        data = JSON.parse(bytes.toString('utf8'));
      } catch {
        return;
      }
      if (firstMessage && data !== null && typeof data === 'object' && (data as JsonObject).type === 'feature_flags') {
        const flags = (data as JsonObject).data;
        this.featureFlags.set(sid, flags !== null && typeof flags === 'object' ? (flags as JsonObject) : {});
        this.send('feature_flags', SERVER_FEATURES, sid);
      }
      firstMessage = false;
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.cut.has(ws)) return;
      this.sockets.delete(sid);
      this.featureFlags.delete(sid);
    });
  }

  /** send_json: to one sid, or to every registered socket when `sid` is null. */
  send(type: string, data: JsonObject, sid: string | null): void {
    this.deliver(JSON.stringify({ type, data }), sid);
  }

  sendBinary(frame: Buffer, sid: string | null): void {
    this.deliver(frame, sid);
  }

  supportsPreviewMetadata(sid: string | null): boolean {
    return sid !== null && this.featureFlags.get(sid)?.supports_preview_metadata === true;
  }

  private deliver(payload: string | Buffer, sid: string | null): void {
    if (sid === null) {
      for (const ws of this.sockets.values()) this.sendTo(ws, payload);
      return;
    }
    const ws = this.sockets.get(sid);
    if (ws) this.sendTo(ws, payload);
  }

  private sendTo(ws: WebSocket, payload: string | Buffer): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(payload, { binary: typeof payload !== 'string' });
  }

  registeredCount(): number {
    return this.sockets.size;
  }

  openCount(): number {
    return this.wss.clients.size;
  }

  /** Cuts every connection at the TCP level (what clients see when the server dies). */
  terminateAll(): void {
    for (const ws of this.wss.clients) {
      this.cut.add(ws);
      ws.terminate();
    }
    this.sockets.clear();
    this.featureFlags.clear();
  }

  close(): Promise<void> {
    this.terminateAll();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
