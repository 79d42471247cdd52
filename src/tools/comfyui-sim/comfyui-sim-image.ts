import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import { PyException } from './comfyui-sim-python.util';
import type { SimImage, SimMask } from './comfyui-sim.types';

// Per-pixel loops use local aliases: a global `Math.x` lookup per pixel is slow inside jest's vm sandbox.
const { fround, trunc, floor, min, max, sin, cos, exp, PI } = Math;

/** Past this many pixels a decoded or placeholder image is refused, like a GPU running out of room. */
const MAX_PIXELS = 64 * 1024 * 1024;

export function createImage(width: number, height: number): SimImage {
  if (width * height > MAX_PIXELS) {
    throw new PyException('torch.OutOfMemoryError', `Allocation on device of ${width}x${height} pixels failed`);
  }
  return { width, height, data: new Float32Array(width * height * 3) };
}

/** EmptyImage: every pixel `color` (0xRRGGBB), channels stored as float32 like torch.full(..., c / 0xFF). */
export function solidImage(width: number, height: number, color: number): SimImage {
  const image = createImage(width, height);
  const r = ((color >> 16) & 0xff) / 0xff;
  const g = ((color >> 8) & 0xff) / 0xff;
  const b = (color & 0xff) / 0xff;
  const d = image.data;
  for (let i = 0; i < d.length; i += 3) {
    d[i] = r;
    d[i + 1] = g;
    d[i + 2] = b;
  }
  return image;
}

export function invertImage(src: SimImage): SimImage {
  const out = createImage(src.width, src.height);
  const s = src.data;
  const d = out.data;
  for (let i = 0; i < s.length; i++) d[i] = 1 - s[i];
  return out;
}

export type ResizeMethod = 'nearest-exact' | 'bilinear' | 'area' | 'bicubic' | 'lanczos';

/** Resize; nearest-exact is exact, the smooth methods all use bilinear (align_corners=False). */
export function resizeImage(src: SimImage, width: number, height: number, method: ResizeMethod): SimImage {
  if (width === src.width && height === src.height) return src;
  const out = createImage(width, height);
  const sx = src.width / width;
  const sy = src.height / height;
  const s = src.data;
  const d = out.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (method === 'nearest-exact') {
        const px = min(src.width - 1, floor((x + 0.5) * sx));
        const py = min(src.height - 1, floor((y + 0.5) * sy));
        const i = (py * src.width + px) * 3;
        d[o] = s[i];
        d[o + 1] = s[i + 1];
        d[o + 2] = s[i + 2];
        continue;
      }
      const fx = max(0, (x + 0.5) * sx - 0.5);
      const fy = max(0, (y + 0.5) * sy - 0.5);
      const x0 = min(src.width - 1, floor(fx));
      const y0 = min(src.height - 1, floor(fy));
      const x1 = min(src.width - 1, x0 + 1);
      const y1 = min(src.height - 1, y0 + 1);
      const ax = fx - x0;
      const ay = fy - y0;
      for (let c = 0; c < 3; c++) {
        const top = s[(y0 * src.width + x0) * 3 + c] * (1 - ax) + s[(y0 * src.width + x1) * 3 + c] * ax;
        const bottom = s[(y1 * src.width + x0) * 3 + c] * (1 - ax) + s[(y1 * src.width + x1) * 3 + c] * ax;
        d[o + c] = top * (1 - ay) + bottom * ay;
      }
    }
  }
  return out;
}

export function cropImage(src: SimImage, x: number, y: number, width: number, height: number): SimImage {
  const out = createImage(width, height);
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * src.width + x) * 3;
    out.data.set(src.data.subarray(from, from + width * 3), row * width * 3);
  }
  return out;
}

/**
 * ImageBlur: separable Gaussian over linspace(-1, 1, 2r+1) with reflect padding, as nodes_post_processing does.
 * Torch refuses reflect padding not smaller than the input; the message is torch's.
 */
export function blurImage(src: SimImage, radius: number, sigma: number): SimImage {
  if (radius === 0) return src;
  if (radius >= src.width || radius >= src.height) {
    const dim = radius >= src.width ? 3 : 2;
    throw new PyException(
      'RuntimeError',
      `Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (${radius}, ${radius}) at dimension ${dim} of input [1, 3, ${src.height}, ${src.width}]`,
    );
  }
  const size = radius * 2 + 1;
  const kernel = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const t = -1 + (2 * i) / (size - 1);
    kernel[i] = exp(-(t * t) / (2 * sigma * sigma));
    sum += kernel[i];
  }
  for (let i = 0; i < size; i++) kernel[i] /= sum;
  const reflect = (i: number, n: number): number => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const pass = (input: SimImage, horizontal: boolean): SimImage => {
    const out = createImage(input.width, input.height);
    const { width, height } = input;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          for (let k = 0; k < size; k++) {
            const sx = horizontal ? reflect(x + k - radius, width) : x;
            const sy = horizontal ? y : reflect(y + k - radius, height);
            acc += input.data[(sy * width + sx) * 3 + c] * kernel[k];
          }
          out.data[(y * width + x) * 3 + c] = acc;
        }
      }
    }
    return out;
  };
  return pass(pass(src, true), false);
}

/** SaveImage's conversion: clip(255 * x) in float32, truncated to uint8. */
export function toRgbBytes(image: SimImage): Buffer {
  const out = Buffer.alloc(image.width * image.height * 3);
  const d = image.data;
  for (let i = 0; i < d.length; i++) {
    const v = fround(255 * d[i]);
    out[i] = v >= 255 ? 255 : v > 0 ? trunc(v) : 0;
  }
  return out;
}

/** PNG (RGB, 8 bit) with optional tEXt chunks, the way PIL writes ComfyUI's metadata. */
export function encodePng(image: SimImage, opts: { level?: number; text?: Record<string, string> } = {}): Buffer {
  const png = new PNG({
    width: image.width,
    height: image.height,
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
  });
  png.data = toRgbBytes(image);
  const bytes = PNG.sync.write(png, {
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
    deflateLevel: opts.level ?? 4,
    // A fixed filter: pngjs's adaptive choice costs ~50x more under jest for a slightly smaller file.
    filterType: 2,
  });
  const entries = Object.entries(opts.text ?? {});
  if (entries.length === 0) return bytes;
  const ihdrEnd = 8 + 8 + 13 + 4;
  const chunks = entries.map(([key, value]) => textChunk(key, value));
  return Buffer.concat([bytes.subarray(0, ihdrEnd), ...chunks, bytes.subarray(ihdrEnd)]);
}

function textChunk(keyword: string, text: string): Buffer {
  const data = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write('tEXt', 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

export interface DecodedImage {
  image: SimImage;
  mask: SimMask;
  /** False when the bytes were not PNG and a placeholder of the right size stands in for the picture. */
  exact: boolean;
}

/**
 * LoadImage's decode: RGB float image plus a mask from alpha (1 - a), or a 64x64 zero mask without alpha.
 * Only PNG is decoded (pngjs); JPEG/WebP/GIF/BMP are sized from their headers and filled with a pattern derived
 * from their bytes, so workflows still run with the right dimensions.
 */
export function decodeImageFile(bytes: Buffer, displayPath: string): DecodedImage {
  if (isPng(bytes)) {
    let png: ReturnType<typeof PNG.sync.read>;
    try {
      png = PNG.sync.read(bytes);
    } catch {
      throw new PyException('PIL.UnidentifiedImageError', `cannot identify image file '${displayPath}'`);
    }
    const image = createImage(png.width, png.height);
    const pixels = png.width * png.height;
    let hasAlpha = false;
    const alpha = new Float32Array(pixels);
    for (let p = 0; p < pixels; p++) {
      image.data[p * 3] = png.data[p * 4] / 255;
      image.data[p * 3 + 1] = png.data[p * 4 + 1] / 255;
      image.data[p * 3 + 2] = png.data[p * 4 + 2] / 255;
      const a = png.data[p * 4 + 3];
      if (a !== 255) hasAlpha = true;
      alpha[p] = 1 - a / 255;
    }
    const mask = hasAlpha
      ? { width: png.width, height: png.height, data: alpha }
      : { width: 64, height: 64, data: new Float32Array(64 * 64) };
    return { image, mask, exact: true };
  }
  const size = sniffImageSize(bytes);
  if (!size) throw new PyException('PIL.UnidentifiedImageError', `cannot identify image file '${displayPath}'`);
  return {
    image: patternImage(size.width, size.height, createHash('sha256').update(bytes).digest()),
    mask: { width: 64, height: 64, data: new Float32Array(64 * 64) },
    exact: false,
  };
}

export function isPng(bytes: Buffer): boolean {
  return bytes.length > 24 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.readUInt32BE(4) === 0x0d0a1a0a;
}

/** Width/height from the headers of the formats Telegram and browsers send. */
export function sniffImageSize(b: Buffer): { width: number; height: number } | null {
  if (isPng(b)) return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (b.length > 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      const len = b.readUInt16BE(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
      i += 2 + len;
    }
    return null;
  }
  if (b.length > 30 && b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WEBP') {
    const chunk = b.toString('ascii', 12, 16);
    if (chunk === 'VP8 ') return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = b.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
    return null;
  }
  if (b.length > 10 && b.toString('ascii', 0, 4) === 'GIF8')
    return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
  if (b.length > 26 && b.toString('ascii', 0, 2) === 'BM') {
    return { width: Math.abs(b.readInt32LE(18)), height: Math.abs(b.readInt32LE(22)) };
  }
  return null;
}

/** A smooth two-colour pattern seeded by `seed` bytes: cheap, deterministic and recognisable. */
export function patternImage(width: number, height: number, seed: Uint8Array): SimImage {
  const image = createImage(width, height);
  const c1 = [seed[0] / 255, seed[1] / 255, seed[2] / 255];
  const c2 = [seed[3] / 255, seed[4] / 255, seed[5] / 255];
  const fx = 2 + (seed[6] % 7);
  const fy = 2 + (seed[7] % 7);
  const d = image.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / max(1, width - 1);
      const v = y / max(1, height - 1);
      const t = (u + v) / 2;
      const wave = 0.08 * sin(u * fx * PI * 2) * cos(v * fy * PI * 2);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) d[o + c] = clamp01(c1[c] * (1 - t) + c2[c] * t + wave);
    }
  }
  return image;
}

export function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
