export interface Dimensions {
  width: number;
  height: number;
}

/** Reads width and height from PNG, JPEG or WebP headers; undefined for anything else or a truncated header. */
export function imageDimensions(bytes: Buffer): Dimensions | undefined {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.toString('ascii', 12, 16) === 'IHDR') {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return jpegDimensions(bytes);
  if (bytes.length >= 30 && bytes.toString('ascii', 0, 4) === 'RIFF' && bytes.toString('ascii', 8, 12) === 'WEBP') {
    return webpDimensions(bytes);
  }
  return undefined;
}

function jpegDimensions(bytes: Buffer): Dimensions | undefined {
  let pos = 2;
  for (let guard = 0; guard < 10_000 && pos + 9 <= bytes.length; guard++) {
    if (bytes[pos] !== 0xff) return undefined;
    const marker = bytes[pos + 1];
    const length = bytes.readUInt16BE(pos + 2);
    // SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(pos + 5), width: bytes.readUInt16BE(pos + 7) };
    }
    pos += 2 + length;
  }
  return undefined;
}

function webpDimensions(bytes: Buffer): Dimensions | undefined {
  const chunk = bytes.toString('ascii', 12, 16);
  if (chunk === 'VP8X') return { width: 1 + bytes.readUIntLE(24, 3), height: 1 + bytes.readUIntLE(27, 3) };
  if (chunk === 'VP8L') {
    const bits = bytes.readUInt32LE(21);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
  }
  if (chunk === 'VP8 ') return { width: bytes.readUInt16LE(26) & 0x3fff, height: bytes.readUInt16LE(28) & 0x3fff };
  return undefined;
}

/** sendPhoto's limits: ≤ 10 MB, width + height ≤ 10000, aspect ratio ≤ 20. Beyond them: sendDocument. */
export const PHOTO_MAX_BYTES = 10 * 1024 * 1024;

export function fitsAsPhoto(bytes: Buffer): boolean {
  if (bytes.length > PHOTO_MAX_BYTES) return false;
  const size = imageDimensions(bytes);
  if (!size || size.width === 0 || size.height === 0) return false;
  const ratio = Math.max(size.width, size.height) / Math.min(size.width, size.height);
  return size.width + size.height <= 10_000 && ratio <= 20;
}
