export interface FormFile {
  filename: string;
  bytes: Buffer;
}

export type FormValue = string | FormFile;

/**
 * The form fields of a POST body, like aiohttp's `request.post()`: multipart/form-data (files and text fields)
 * or application/x-www-form-urlencoded. Other content types yield no fields; a broken multipart body yields null.
 */
export function parseForm(body: Buffer, contentType: string | undefined): Map<string, FormValue> | null {
  const fields = new Map<string, FormValue>();
  const type = (contentType ?? '').toLowerCase();
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) if (!fields.has(key)) fields.set(key, value);
    return fields;
  }
  if (!type.startsWith('multipart/form-data')) return fields;
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) return null;
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos < 0) return null;
  for (;;) {
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
    if (name !== undefined && !fields.has(name)) {
      fields.set(name, filename !== undefined ? { filename, bytes: Buffer.from(content) } : content.toString('utf8'));
    }
    pos = next + 2;
  }
}
