/**
 * Reads a Bot API request's parameters the ways Telegram accepts them: query string, JSON,
 * application/x-www-form-urlencoded, or multipart/form-data (files as Buffers). Object-valued parameters sent
 * as strings in forms (reply_markup, reply_parameters) are parsed like Telegram does.
 */
export interface UploadedFile {
  filename: string;
  bytes: Buffer;
}

export type Params = Record<string, unknown>;

const JSON_FIELDS = ['reply_markup', 'reply_parameters', 'allowed_updates', 'entities', 'caption_entities'];

export function parseParams(query: URLSearchParams, body: Buffer, contentType: string | undefined): Params | null {
  const params: Params = Object.fromEntries(query);
  const type = (contentType ?? '').toLowerCase();
  if (type.startsWith('application/json') && body.length > 0) {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
      Object.assign(params, parsed);
    } catch {
      return null;
    }
  } else if (type.startsWith('application/x-www-form-urlencoded')) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  } else if (type.startsWith('multipart/form-data')) {
    const fields = parseMultipart(body, contentType ?? '');
    if (!fields) return null;
    Object.assign(params, fields);
  }
  for (const field of JSON_FIELDS) {
    const value = params[field];
    if (typeof value === 'string') {
      try {
        params[field] = JSON.parse(value);
      } catch {
        return null;
      }
    }
  }
  return params;
}

function parseMultipart(body: Buffer, contentType: string): Params | null {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) return null;
  const delimiter = Buffer.from(`--${boundary}`);
  const fields: Params = {};
  let pos = body.indexOf(delimiter);
  if (pos < 0) return null;
  for (let part = 0; part < 1_000; part++) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return fields;
    if (body.subarray(pos, pos + 2).toString() === '\r\n') pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) return null;
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) return null;
    const content = body.subarray(headerEnd + 4, next);
    const disposition = /content-disposition:([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    if (name !== undefined) {
      fields[name] =
        filename !== undefined
          ? ({ filename, bytes: Buffer.from(content) } satisfies UploadedFile)
          : content.toString('utf8');
    }
    pos = next + 2;
  }
  return null;
}

export function isUploadedFile(value: unknown): value is UploadedFile {
  return typeof value === 'object' && value !== null && Buffer.isBuffer((value as UploadedFile).bytes);
}
