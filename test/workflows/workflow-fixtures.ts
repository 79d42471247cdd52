import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { WorkflowTemplate } from '../../src/workflows';

/** Templates under test are deliberately malformed JSON, so tests mutate them without the template types. */

export type LooseJson = Record<string, any>;

export const SHIPPED_WORKFLOWS_DIR = join(__dirname, '..', '..', 'workflows');

/** A real 2×2 PNG, so the sniffing is tested on what clients actually send. */
export function pngBytes(): Buffer {
  const png = new PNG({ width: 2, height: 2 });
  png.data.fill(0x7f);
  return PNG.sync.write(png);
}

/** SOI + APP0/JFIF header: enough for magic-byte sniffing; its base64 starts with "/9j/" like every JPEG. */
export function jpegBytes(): Buffer {
  return Buffer.from([
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xff, 0xd9,
  ]);
}

export function webpBytes(): Buffer {
  const body = Buffer.concat([Buffer.from('WEBPVP8 '), Buffer.alloc(10)]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length);
  return Buffer.concat([Buffer.from('RIFF'), size, body]);
}

/**
 * A small valid template exercising every input type: EmptyImage → ImageInvert → SaveImage plus a LoadImage
 * branch. Returned as a fresh mutable object so each test can break one thing.
 */
export function sampleTemplate(): LooseJson {
  return {
    name: 'sample',
    description: 'Sample workflow for tests',
    inputs: {
      text: { type: 'string', maxLength: 10, bind: ['4.inputs.text'] },
      width: { type: 'integer', default: 64, min: 8, max: 256, multipleOf: 8, bind: ['1.inputs.width'] },
      seed: { type: 'integer', default: 'random', bind: ['1.inputs.color'] },
      scale: { type: 'number', default: 1.5, min: 0, max: 10, bind: ['5.inputs.megapixels'] },
      flag: { type: 'boolean', default: false, bind: ['4.inputs.flag'] },
      mode: { type: 'string', enum: ['a', 'b'], default: 'a', bind: ['5.inputs.upscale_method'] },
      photo: { type: 'image', required: true, bind: ['6.inputs.image'] },
    },
    output: { node: '3' },
    prompt: {
      '1': { class_type: 'EmptyImage', inputs: { width: 512, height: 512, batch_size: 1, color: 0 } },
      '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'test/sample' } },
      '4': { class_type: 'TextNode', inputs: { text: '', flag: true } },
      '5': {
        class_type: 'ImageScaleToTotalPixels',
        inputs: { image: ['6', 0], upscale_method: 'lanczos', megapixels: 1 },
      },
      '6': { class_type: 'LoadImage', inputs: { image: 'example.png' } },
    },
  };
}

export function asTemplate(raw: LooseJson): WorkflowTemplate {
  return raw as WorkflowTemplate;
}

/** Runs `fn` with a fresh directory under the OS temp dir and removes it afterwards, pass or fail. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'comfy-relay-workflows-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function writeJson(dir: string, file: string, value: unknown): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
}
