import type { ImageMime, ImageValue } from './workflow.types';

export type ImageParseResult =
  { readonly ok: true; readonly image: ImageValue } | { readonly ok: false; readonly message: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/i;
const STANDARD_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE_BASE64 = /^[A-Za-z0-9_-]*={0,2}$/;
// Words the error for values that fail anyway: base64 may itself start with "/" (every JPEG does: "/9j/"),
// so path-likeness never decides acceptance, only the message. Real paths and URLs are short.
const PATH_OR_URL = /^(?:[a-z][a-z0-9+.-]*:|[~/\\]|\.{1,2}[\\/])|\.\.|\\|\.(?:png|jpe?g|webp|gif|bmp|tiff?)$/i;
const PATH_OR_URL_MAX_LENGTH = 2048;

/** Identifies PNG, JPEG and WebP by their leading bytes; the declared type of an upload is never trusted. */
export function sniffImageMime(bytes: Uint8Array): ImageMime | undefined {
  if (bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return 'image/png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

/** Accepts already-decoded bytes (multipart upload, Telegram file) after checking size and magic bytes. */
export function imageFromBytes(bytes: Uint8Array, maxBytes: number): ImageParseResult {
  if (bytes.length === 0) return { ok: false, message: 'image is empty' };
  if (bytes.length > maxBytes) return tooLarge(bytes.length, maxBytes);
  const mime = sniffImageMime(bytes);
  if (!mime) return { ok: false, message: 'is not a PNG, JPEG or WebP image' };
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return { ok: true, image: { kind: 'image', bytes: buffer, mime, size: buffer.length } };
}

/**
 * Decodes a base64 image, bare or as a `data:image/...;base64,` URL. Strict about the alphabet (Node's decoder
 * silently skips junk), checks the size before decoding, and sniffs the bytes: valid base64 is not an image.
 */
export function imageFromBase64(value: string, maxBytes: number): ImageParseResult {
  const result = decodeBase64Image(value.trim(), maxBytes);
  if (!result.ok && looksLikePathOrUrl(value.trim())) {
    return { ok: false, message: 'must be base64 image data or a data: URL, not a file path or URL' };
  }
  return result;
}

function looksLikePathOrUrl(value: string): boolean {
  return value.length <= PATH_OR_URL_MAX_LENGTH && !/^data:/i.test(value) && PATH_OR_URL.test(value);
}

function decodeBase64Image(value: string, maxBytes: number): ImageParseResult {
  let payload = value;
  const dataUrl = DATA_URL.exec(payload);
  if (dataUrl) {
    const mediaType = dataUrl[1].toLowerCase();
    const params = dataUrl[2].toLowerCase().split(';');
    if (!mediaType.startsWith('image/')) {
      return { ok: false, message: `data: URL must carry an image, got "${mediaType || 'text/plain'}"` };
    }
    if (!params.includes('base64')) return { ok: false, message: 'data: URL must be base64-encoded (";base64,")' };
    payload = payload.slice(dataUrl[0].length);
  }
  if (/\s/.test(payload)) payload = payload.replace(/\s+/g, '');
  if (payload === '') return { ok: false, message: 'image is empty' };
  if (!isStrictBase64(payload)) return { ok: false, message: 'is not valid base64' };
  const decodedSize = base64DecodedSize(payload);
  if (decodedSize > maxBytes) return tooLarge(decodedSize, maxBytes);
  return imageFromBytes(Buffer.from(payload, 'base64'), maxBytes);
}

function isStrictBase64(payload: string): boolean {
  if (!STANDARD_BASE64.test(payload) && !URL_SAFE_BASE64.test(payload)) return false;
  // Padded input must be whole quartets; unpadded input can't leave a lone sextet.
  return payload.endsWith('=') ? payload.length % 4 === 0 : payload.length % 4 !== 1;
}

function base64DecodedSize(payload: string): number {
  const unpadded = payload.replace(/=+$/, '').length;
  return Math.floor((unpadded * 3) / 4);
}

function tooLarge(size: number, maxBytes: number): ImageParseResult {
  return { ok: false, message: `image is too large: ${size} bytes, limit is ${maxBytes} bytes` };
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}
