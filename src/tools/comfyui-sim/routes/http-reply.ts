import type { IncomingMessage } from 'node:http';
import { PyException, pyTypeName } from '../comfyui-sim-python.util';
import { MAX_UPLOAD_SIZE } from '../comfyui-sim-socket-hub';
import type { JsonObject } from '../comfyui-sim.types';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
/** aiohttp's body for an unhandled exception. */
export const TROUBLE = '500 Internal Server Error\n\nServer got itself in trouble';

export class HttpReply {
  constructor(
    readonly status: number,
    readonly body: Buffer | string = '',
    readonly headers: Record<string, string> = {},
  ) {}
}

export const json = (body: unknown, status = 200): HttpReply =>
  new HttpReply(status, JSON.stringify(body), { 'Content-Type': JSON_TYPE });
/** `web.Response(status=...)`: no body, no content type. */
export const empty = (status = 200): HttpReply => new HttpReply(status);
export const text = (status: number, body: string): HttpReply =>
  new HttpReply(status, body, { 'Content-Type': TEXT_TYPE });
export const trouble = (status = 500): HttpReply => text(status, TROUBLE);

/** Waits `ms`, or less if the client goes away. */
export function sleep(ms: number, req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      req.socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    req.socket.once('close', done);
  });
}

/** The request body, or null past aiohttp's client_max_size. */
export async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_UPLOAD_SIZE) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** `await request.json()`: a body that is not JSON raises (and becomes the plain 500). */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new PyException('JSONDecodeError', 'Expecting value');
  }
}

/** Python's `container[key]` on a decoded JSON body (anything but a dict is a TypeError → 500). */
export function getItem(container: unknown, key: string): unknown {
  if (container !== null && typeof container === 'object' && !Array.isArray(container)) {
    return (container as JsonObject)[key];
  }
  throw new PyException('TypeError', `${pyTypeName(container)} indices must be integers or slices, not str`);
}

/** Python iteration over a JSON value: list items, dict keys, string characters. */
export function pyIterate(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return Array.from(value);
  if (value !== null && typeof value === 'object') return Object.keys(value);
  throw new PyException('TypeError', `'${pyTypeName(value)}' object is not iterable`);
}
