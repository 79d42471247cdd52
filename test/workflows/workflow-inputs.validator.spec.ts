import {
  WorkflowCatalog,
  validateInputs,
  validateInputsWithFiles,
  type InputLimits,
  type InputValidationResult,
  type WorkflowTemplate,
} from '../../src/workflows';
import { SHIPPED_WORKFLOWS_DIR, asTemplate, jpegBytes, pngBytes, sampleTemplate, webpBytes } from './workflow-fixtures';

const limits: InputLimits = { maxImageBytes: 1024 * 1024 };

let txt2img: WorkflowTemplate;
let edit: WorkflowTemplate;
const sample = asTemplate(sampleTemplate());

beforeAll(async () => {
  const catalog = await WorkflowCatalog.loadDir(SHIPPED_WORKFLOWS_DIR);
  txt2img = catalog.get('txt2img')!;
  edit = catalog.get('edit')!;
});

function errorsOf(result: InputValidationResult): Record<string, string> {
  if (result.ok) throw new Error(`expected errors, got values ${JSON.stringify(result.values)}`);
  return Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
}

function valuesOf(result: InputValidationResult): Record<string, unknown> {
  if (!result.ok) throw new Error(`expected values, got errors ${JSON.stringify(result.errors)}`);
  return result.values;
}

describe('validateInputs: scalars', () => {
  it('applies defaults and keeps "random" seeds for the binder', () => {
    expect(valuesOf(validateInputs(txt2img, { prompt: 'a cat' }, limits))).toEqual({
      prompt: 'a cat',
      negative: 'blurry, low quality, watermark, text',
      seed: 'random',
      steps: 25,
      cfg: 7,
      width: 1024,
      height: 1024,
      checkpoint: 'sd_xl_base_1.0.safetensors',
    });
  });

  it('treats null as not given', () => {
    expect(valuesOf(validateInputs(txt2img, { prompt: 'a cat', steps: null }, limits)).steps).toBe(25);
  });

  it('requires required inputs', () => {
    expect(errorsOf(validateInputs(txt2img, {}, limits))).toEqual({ 'inputs.prompt': 'is required' });
  });

  it('accepts undefined inputs for a workflow without required inputs', () => {
    const echo = asTemplate({ ...sampleTemplate(), inputs: { w: { type: 'integer', default: 1, bind: [] } } });
    expect(valuesOf(validateInputs(echo, undefined, limits))).toEqual({ w: 1 });
  });

  it('refuses inputs that are not an object', () => {
    expect(errorsOf(validateInputs(txt2img, ['a cat'], limits))).toEqual({ inputs: 'must be an object, got an array' });
    expect(errorsOf(validateInputs(txt2img, 'a cat', limits))).toEqual({
      inputs: 'must be an object, got string "a cat"',
    });
  });

  it('refuses unknown inputs, including prototype keys', () => {
    const errors = errorsOf(validateInputs(txt2img, JSON.parse('{"prompt":"x","styel":1,"__proto__":{}}'), limits));
    expect(errors['inputs.styel']).toMatch(/^unknown input; workflow "txt2img" accepts: prompt, negative, seed/);
    expect(errors['inputs.__proto__']).toMatch(/^unknown input/);
  });

  it('does not coerce strings from JSON, and says so', () => {
    const errors = errorsOf(validateInputs(txt2img, { prompt: 'x', steps: '12', cfg: '7' }, limits));
    expect(errors['inputs.steps']).toBe('must be an integer, got string "12" (send a JSON number, not a string)');
    expect(errors['inputs.cfg']).toBe('must be a number, got string "7" (send a JSON number, not a string)');
  });

  it('tells integer from number', () => {
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', steps: 7.5 }, limits))).toEqual({
      'inputs.steps': 'must be an integer, got number 7.5',
    });
    expect(valuesOf(validateInputs(txt2img, { prompt: 'x', cfg: 7.5 }, limits)).cfg).toBe(7.5);
  });

  it('checks every type', () => {
    const errors = errorsOf(validateInputs(sample, { text: 5, flag: 'true', scale: true, photo: 3 }, limits));
    expect(errors).toEqual({
      'inputs.text': 'must be a string, got number 5',
      'inputs.flag': 'must be a boolean, got string "true" (send a JSON boolean, not a string)',
      'inputs.scale': 'must be a number, got boolean true',
      'inputs.photo': 'must be a base64 string or data: URL of a PNG, JPEG or WebP image, got number 3',
    });
  });

  it('checks min, max and multipleOf', () => {
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', width: 32, height: 4096, steps: 0 }, limits))).toEqual({
      'inputs.width': 'must be at least 64, got 32',
      'inputs.height': 'must be at most 2048, got 4096',
      'inputs.steps': 'must be at least 1, got 0',
    });
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', width: 1020 }, limits))).toEqual({
      'inputs.width': 'must be a multiple of 8, got 1020',
    });
  });

  it('checks maxLength in characters, and the service limit tightens it', () => {
    expect(valuesOf(validateInputs(sample, { text: '🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱', photo: pngB64() }, limits)).text).toBe(
      '🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱',
    );
    expect(errorsOf(validateInputs(sample, { text: 'x'.repeat(11), photo: pngB64() }, limits))).toEqual({
      'inputs.text': 'must be at most 10 characters, got 11',
    });
    const tight = { ...limits, maxStringLength: 5 };
    expect(errorsOf(validateInputs(sample, { text: 'abcdef', photo: pngB64() }, tight))).toEqual({
      'inputs.text': 'must be at most 5 characters, got 6',
    });
  });

  it('checks minLength', () => {
    expect(errorsOf(validateInputs(txt2img, { prompt: '' }, limits))).toEqual({
      'inputs.prompt': 'must be at least 1 characters, got 0',
    });
  });

  it('checks enum', () => {
    expect(errorsOf(validateInputs(sample, { mode: 'c', photo: pngB64() }, limits))).toEqual({
      'inputs.mode': 'must be one of: "a", "b"',
    });
  });

  it('checks pattern on the whole value (model file names cannot climb out)', () => {
    for (const checkpoint of ['../../secret.safetensors', 'x.safetensors; rm', '/abs/model.ckpt']) {
      expect(errorsOf(validateInputs(txt2img, { prompt: 'x', checkpoint }, limits))['inputs.checkpoint']).toMatch(
        /^must match the pattern/,
      );
    }
    expect(
      valuesOf(validateInputs(txt2img, { prompt: 'x', checkpoint: 'SDXL/juggernaut v9.safetensors' }, limits)),
    ).toBeTruthy();
  });

  it('accepts "random" only where the template defaults to it', () => {
    expect(valuesOf(validateInputs(txt2img, { prompt: 'x', seed: 'random' }, limits)).seed).toBe('random');
    expect(valuesOf(validateInputs(txt2img, { prompt: 'x', seed: 42 }, limits)).seed).toBe(42);
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', steps: 'random' }, limits))['inputs.steps']).toMatch(
      /^must be an integer/,
    );
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', seed: -1 }, limits))).toEqual({
      'inputs.seed': 'must be at least 0, got -1',
    });
  });

  it('reports every error, each naming its field', () => {
    const result = validateInputs(txt2img, { steps: 'x', width: 1, extra: true }, limits);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.field).sort()).toEqual([
      'inputs.extra',
      'inputs.prompt',
      'inputs.steps',
      'inputs.width',
    ]);
  });
});

describe('validateInputs: coerceStrings (Telegram /settings)', () => {
  const coerce = { coerceStrings: true };

  it('parses numbers, booleans and "random"', () => {
    const values = valuesOf(
      validateInputs(txt2img, { prompt: 'x', steps: ' 30 ', cfg: '7.5', seed: 'RANDOM', width: '512' }, limits, coerce),
    );
    expect(values).toMatchObject({ steps: 30, cfg: 7.5, seed: 'random', width: 512 });
    for (const [text, expected] of [
      ['yes', true],
      ['On', true],
      ['1', true],
      ['false', false],
      ['no', false],
    ] as const) {
      expect(valuesOf(validateInputs(sample, { flag: text, photo: pngB64() }, limits, coerce)).flag).toBe(expected);
    }
  });

  it('still refuses text that is not a number, and still checks ranges', () => {
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', steps: 'many', cfg: '1e9' }, limits, coerce))).toEqual({
      'inputs.steps': 'must be an integer, got string "many"',
      'inputs.cfg': 'must be at most 30, got 1000000000',
    });
    expect(errorsOf(validateInputs(txt2img, { prompt: 'x', steps: '2.5' }, limits, coerce))).toEqual({
      'inputs.steps': 'must be an integer, got string "2.5"',
    });
  });
});

describe('validateInputs: images', () => {
  it('decodes base64 PNG and sniffs its type', () => {
    const png = pngBytes();
    const image = valuesOf(validateInputs(edit, { prompt: 'x', image: png.toString('base64') }, limits)).image;
    expect(image).toEqual({ kind: 'image', bytes: png, mime: 'image/png', size: png.length });
  });

  it('accepts data: URLs, JPEG (base64 starts with "/"), WebP, url-safe and line-wrapped base64', () => {
    const cases: [string, string][] = [
      [`data:image/png;base64,${pngB64()}`, 'image/png'],
      [`data:image/jpeg;name=a.jpg;base64,${jpegBytes().toString('base64')}`, 'image/jpeg'],
      [jpegBytes().toString('base64'), 'image/jpeg'],
      [webpBytes().toString('base64'), 'image/webp'],
      [jpegBytes().toString('base64url'), 'image/jpeg'],
      [pngB64().replace(/(.{16})/g, '$1\r\n'), 'image/png'],
    ];
    expect(jpegBytes().toString('base64').startsWith('/9j/')).toBe(true);
    for (const [image, mime] of cases) {
      expect(valuesOf(validateInputs(edit, { prompt: 'x', image }, limits)).image).toMatchObject({ mime });
    }
  });

  it('trusts the bytes, not the declared type', () => {
    const image = valuesOf(
      validateInputs(edit, { prompt: 'x', image: `data:image/png;base64,${webpBytes().toString('base64')}` }, limits),
    ).image;
    expect(image).toMatchObject({ mime: 'image/webp' });
  });

  it('refuses base64 that is not an image', () => {
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00').toString('base64');
    for (const image of [Buffer.from('hello world').toString('base64'), gif]) {
      expect(errorsOf(validateInputs(edit, { prompt: 'x', image }, limits))).toEqual({
        'inputs.image': 'is not a PNG, JPEG or WebP image',
      });
    }
  });

  it('refuses strings that are not base64', () => {
    expect(errorsOf(validateInputs(edit, { prompt: 'x', image: 'iVBOR!!w0KGgo=' }, limits))).toEqual({
      'inputs.image': 'is not valid base64',
    });
    expect(errorsOf(validateInputs(edit, { prompt: 'x', image: '' }, limits))).toEqual({
      'inputs.image': 'image is empty',
    });
  });

  it('refuses file paths and URLs', () => {
    for (const image of [
      '/etc/passwd',
      '../input/other-user.png',
      'photo.png',
      'https://example.com/a.png',
      'file:///tmp/a.png',
      'C:\\images\\a.png',
      '~/a.jpg',
    ]) {
      expect(errorsOf(validateInputs(edit, { prompt: 'x', image }, limits))).toEqual({
        'inputs.image': 'must be base64 image data or a data: URL, not a file path or URL',
      });
    }
  });

  it('refuses data: URLs that are not base64 images', () => {
    expect(errorsOf(validateInputs(edit, { prompt: 'x', image: 'data:text/plain;base64,aGVsbG8=' }, limits))).toEqual({
      'inputs.image': 'data: URL must carry an image, got "text/plain"',
    });
    expect(errorsOf(validateInputs(edit, { prompt: 'x', image: 'data:image/png,%89PNG' }, limits))).toEqual({
      'inputs.image': 'data: URL must be base64-encoded (";base64,")',
    });
  });

  it('refuses oversized images before decoding them', () => {
    const big = Buffer.concat([pngBytes(), Buffer.alloc(2000)]);
    expect(
      errorsOf(validateInputs(edit, { prompt: 'x', image: big.toString('base64') }, { maxImageBytes: 1000 })),
    ).toEqual({ 'inputs.image': `image is too large: ${big.length} bytes, limit is 1000 bytes` });
  });

  it("lets a template's maxBytes tighten the service limit", () => {
    const raw = sampleTemplate();
    raw.inputs.photo.maxBytes = 10;
    const errors = errorsOf(validateInputs(asTemplate(raw), { photo: pngB64() }, limits));
    expect(errors['inputs.photo']).toMatch(/^image is too large: \d+ bytes, limit is 10 bytes$/);
  });
});

describe('validateInputsWithFiles (multipart / Telegram)', () => {
  it('takes decoded bytes for image inputs', () => {
    const jpeg = jpegBytes();
    const values = valuesOf(validateInputsWithFiles(edit, { prompt: 'x' }, { image: jpeg }, limits));
    expect(values.image).toEqual({ kind: 'image', bytes: jpeg, mime: 'image/jpeg', size: jpeg.length });
  });

  it('accepts a Uint8Array that is not a Buffer', () => {
    const bytes = new Uint8Array(pngBytes());
    expect(valuesOf(validateInputsWithFiles(edit, { prompt: 'x' }, { image: bytes }, limits)).image).toMatchObject({
      mime: 'image/png',
    });
  });

  it('refuses files for unknown or non-image inputs, and images sent twice', () => {
    const png = pngBytes();
    const errors = errorsOf(
      validateInputsWithFiles(edit, { prompt: 'x', image: pngB64() }, { image: png, prompt: png, extra: png }, limits),
    );
    expect(errors).toEqual({
      'inputs.image': 'was sent both as a file and in inputs; send it once',
      'inputs.prompt': 'a file was sent for a string input; only image inputs take files',
      'inputs.extra': 'a file was sent for an unknown input; only image inputs take files',
    });
  });

  it('checks size and magic bytes of files', () => {
    expect(
      errorsOf(validateInputsWithFiles(edit, { prompt: 'x' }, { image: Buffer.from('not an image') }, limits)),
    ).toEqual({ 'inputs.image': 'is not a PNG, JPEG or WebP image' });
    expect(
      errorsOf(validateInputsWithFiles(edit, { prompt: 'x' }, { image: pngBytes() }, { maxImageBytes: 8 })),
    ).toEqual({ 'inputs.image': expect.stringMatching(/^image is too large/) });
    expect(errorsOf(validateInputsWithFiles(edit, { prompt: 'x' }, {}, limits))).toEqual({
      'inputs.image': 'is required',
    });
  });
});

function pngB64(): string {
  return pngBytes().toString('base64');
}
