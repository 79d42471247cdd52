import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReplyMarkup } from './fake-telegram.types';

/** Bot API wire helpers of the fake: envelopes, bodies, reply markup and image headers. */

export type Json = Record<string, unknown>;
export interface Reply {
  status: number;
  body: Json;
}

const MAX_BODY_BYTES = 60 * 1024 * 1024;

/** A scalar parameter as text (numbers arrive as numbers in JSON bodies and as strings in forms). */
export function str(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
}

export function ok(result: unknown, description?: string): Reply {
  return { status: 200, body: { ok: true, result, ...(description ? { description } : {}) } };
}

export function fail(code: number, description: string): Reply {
  return { status: code, body: { ok: false, error_code: code, description } };
}

export function send(res: ServerResponse, reply: Reply): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
}

export function key(chatId: number, messageId: number): string {
  return `${chatId}:${messageId}`;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** reply_markup as Telegram keeps it: an empty inline keyboard is no keyboard; bad callback_data is refused. */
export function checkMarkup(value: unknown): ReplyMarkup | undefined | 'invalid' {
  if (value === undefined || value === null) return undefined;
  const rows = (value as { inline_keyboard?: unknown }).inline_keyboard;
  if (!Array.isArray(rows)) return undefined;
  for (const row of rows) {
    if (!Array.isArray(row)) return 'invalid';
    for (const button of row as { callback_data?: unknown }[]) {
      const data = button.callback_data;
      if (data === undefined) continue;
      const bytes = typeof data === 'string' ? Buffer.byteLength(data) : 0;
      if (bytes < 1 || bytes > 64) return 'invalid';
    }
  }
  return rows.flat().length === 0 ? undefined : (value as ReplyMarkup);
}

export function sameMarkup(a: ReplyMarkup | undefined, b: ReplyMarkup | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export function imageSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47) {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let pos = 2;
    for (let guard = 0; guard < 10_000 && pos + 9 <= bytes.length; guard++) {
      const marker = bytes[pos + 1]!;
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { height: bytes.readUInt16BE(pos + 5), width: bytes.readUInt16BE(pos + 7) };
      }
      pos += 2 + bytes.readUInt16BE(pos + 2);
    }
  }
  return undefined;
}
