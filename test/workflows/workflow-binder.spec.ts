import {
  MAX_SEED,
  WorkflowBindError,
  WorkflowCatalog,
  bindWorkflow,
  deterministicSeedSource,
  validateInputs,
  type WorkflowTemplate,
} from '../../src/workflows';
import { SHIPPED_WORKFLOWS_DIR, asTemplate, pngBytes, sampleTemplate } from './workflow-fixtures';

let catalog: WorkflowCatalog;
beforeAll(async () => {
  catalog = await WorkflowCatalog.loadDir(SHIPPED_WORKFLOWS_DIR);
});

function template(name: string): WorkflowTemplate {
  return catalog.get(name)!;
}

function validated(workflow: WorkflowTemplate, inputs: Record<string, unknown>): Record<string, unknown> {
  const result = validateInputs(workflow, inputs, { maxImageBytes: 1 << 20 });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.values;
}

describe('bindWorkflow', () => {
  it('sets every bind path of txt2img', () => {
    const values = validated(template('txt2img'), {
      prompt: 'a red fox',
      negative: 'fog',
      seed: 1234,
      steps: 30,
      cfg: 6.5,
      width: 832,
      height: 1216,
      checkpoint: 'juggernautXL.safetensors',
    });
    const { prompt, outputNodeIds, seeds } = bindWorkflow(template('txt2img'), values, { uploadedImages: {} });
    expect(prompt['6'].inputs.text).toBe('a red fox');
    expect(prompt['7'].inputs.text).toBe('fog');
    expect(prompt['3'].inputs).toMatchObject({ seed: 1234, steps: 30, cfg: 6.5, model: ['4', 0] });
    expect(prompt['5'].inputs).toEqual({ width: 832, height: 1216, batch_size: 1 });
    expect(prompt['4'].inputs.ckpt_name).toBe('juggernautXL.safetensors');
    expect(prompt['9'].inputs.filename_prefix).toBe('comfy-relay/txt2img');
    expect(outputNodeIds).toEqual(['9']);
    expect(seeds).toEqual({});
  });

  it('binds one value to several paths', () => {
    const raw = sampleTemplate();
    raw.inputs.width.bind = ['1.inputs.width', '1.inputs.height'];
    const { prompt } = bindWorkflow(asTemplate(raw), { width: 128 }, { uploadedImages: { photo: 'a.png' } });
    expect(prompt['1'].inputs).toMatchObject({ width: 128, height: 128 });
  });

  it('never mutates the template, and returns a mutable copy', () => {
    const raw = sampleTemplate();
    const before = JSON.stringify(raw);
    const { prompt } = bindWorkflow(asTemplate(raw), { text: 'hi', width: 8 }, { uploadedImages: { photo: 'a.png' } });
    expect(JSON.stringify(raw)).toBe(before);
    prompt['1'].inputs.width = 16;
    expect(raw.prompt['1'].inputs.width).toBe(512);

    // Catalog templates are frozen: binding must work on them and leave them alone.
    const frozen = template('txt2img');
    const snapshot = JSON.stringify(frozen);
    bindWorkflow(frozen, validated(frozen, { prompt: 'x' }), { uploadedImages: {} });
    expect(JSON.stringify(frozen)).toBe(snapshot);
  });

  it('resolves "random" seeds within 0..MAX_SEED, differently per call, and reports them', () => {
    const txt2img = template('txt2img');
    const values = validated(txt2img, { prompt: 'x' });
    const picked = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const { prompt, seeds } = bindWorkflow(txt2img, values, { uploadedImages: {} });
      const seed = prompt['3'].inputs.seed as number;
      expect(Number.isSafeInteger(seed)).toBe(true);
      expect(seed).toBeGreaterThanOrEqual(0);
      expect(seed).toBeLessThanOrEqual(MAX_SEED);
      expect(seeds).toEqual({ seed });
      picked.add(seed);
    }
    expect(picked.size).toBe(20);
  });

  it('uses the default "random" when the value is absent', () => {
    const { seeds } = bindWorkflow(template('txt2img'), { prompt: 'x' }, { uploadedImages: {}, seedSource: () => 7 });
    expect(seeds).toEqual({ seed: 7 });
  });

  it('folds seeds into the input range', () => {
    const raw = sampleTemplate();
    raw.inputs.seed.min = 10;
    raw.inputs.seed.max = 19;
    const bind = (rawSeed: number): unknown =>
      bindWorkflow(
        asTemplate(raw),
        { seed: 'random' },
        { uploadedImages: { photo: 'a.png' }, seedSource: () => rawSeed },
      ).prompt['1'].inputs.color;
    expect(bind(0)).toBe(10);
    expect(bind(9)).toBe(19);
    expect(bind(10)).toBe(10);
    expect(bind(MAX_SEED)).toBe(10 + (MAX_SEED % 10));
  });

  it('refuses a seedSource that returns junk', () => {
    for (const junk of [-1, 1.5, Number.NaN, 2 ** 60]) {
      expect(() =>
        bindWorkflow(template('txt2img'), { prompt: 'x' }, { uploadedImages: {}, seedSource: () => junk }),
      ).toThrow(WorkflowBindError);
    }
  });

  it('deterministicSeedSource reproduces the same seeds for the same key', () => {
    const seedsFor = (key: string): number[] => {
      const source = deterministicSeedSource(key);
      return [source(), source()];
    };
    expect(seedsFor('job-1')).toEqual(seedsFor('job-1'));
    expect(seedsFor('job-1')).not.toEqual(seedsFor('job-2'));
    const [first, second] = seedsFor('job-1');
    expect(first).not.toBe(second);
    expect(first).toBeLessThanOrEqual(MAX_SEED);
  });

  it('binds uploaded image names, not the image bytes', () => {
    const edit = template('edit');
    const values = validated(edit, { prompt: 'make it night', image: pngBytes().toString('base64'), seed: 5 });
    const { prompt, outputNodeIds } = bindWorkflow(edit, values, {
      uploadedImages: { image: 'relay/job-42 (1).png' },
    });
    expect(prompt['10'].inputs.image).toBe('relay/job-42 (1).png');
    expect(prompt['6'].inputs.prompt).toBe('make it night');
    expect(prompt['7'].inputs.prompt).toBe('');
    expect(prompt['3'].inputs.seed).toBe(5);
    expect(outputNodeIds).toEqual(['9']);
    expect(JSON.stringify(prompt)).not.toContain('"kind"');
  });

  it('refuses a missing or unsafe uploaded name', () => {
    const edit = template('edit');
    const values = { prompt: 'x' };
    expect(() => bindWorkflow(edit, values, { uploadedImages: {} })).toThrow(
      'workflow "edit": no uploaded file name for image input "image"',
    );
    for (const name of ['', '../secret.png', '/etc/passwd', 'a\\b.png', 'a//b.png', 'x\u0000.png']) {
      expect(() => bindWorkflow(edit, values, { uploadedImages: { image: name } })).toThrow(WorkflowBindError);
    }
  });

  it('refuses unknown names in values and uploads', () => {
    expect(() => bindWorkflow(template('txt2img'), { prompt: 'x', extra: 1 }, { uploadedImages: {} })).toThrow(
      'unknown input "extra"',
    );
    expect(() => bindWorkflow(template('txt2img'), { prompt: 'x' }, { uploadedImages: { photo: 'a.png' } })).toThrow(
      'unknown input "photo"',
    );
  });

  it('re-checks values, since they may come back from a stream', () => {
    expect(() => bindWorkflow(template('txt2img'), { prompt: 'x', steps: 1000 }, { uploadedImages: {} })).toThrow(
      'input "steps" must be at most 100, got 1000',
    );
    expect(() => bindWorkflow(template('txt2img'), {}, { uploadedImages: {} })).toThrow(
      'required input "prompt" has no value',
    );
  });

  it('leaves the graph literal for an optional input without value or default', () => {
    const raw = sampleTemplate();
    const { prompt } = bindWorkflow(asTemplate(raw), {}, { uploadedImages: { photo: 'a.png' } });
    expect(prompt['4'].inputs.text).toBe('');
  });

  it('binds nothing for inputs with an empty bind list (echo-invert prompt)', () => {
    const echo = template('echo-invert');
    const { prompt } = bindWorkflow(echo, validated(echo, { prompt: 'ignored text', color: 31337 }), {
      uploadedImages: {},
    });
    expect(prompt).toEqual({
      '1': {
        class_type: 'EmptyImage',
        inputs: { width: 512, height: 512, batch_size: 1, color: 31337 },
        _meta: { title: 'EmptyImage' },
      },
      '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] }, _meta: { title: 'Invert Image' } },
      '3': {
        class_type: 'SaveImage',
        inputs: { filename_prefix: 'comfy-relay/echo-invert', images: ['2', 0] },
        _meta: { title: 'Save Image' },
      },
    });
    expect(JSON.stringify(prompt)).not.toContain('ignored text');
  });

  it('without output.node, returns every SaveImage node', () => {
    const raw = sampleTemplate();
    delete raw.output;
    raw.prompt['7'] = { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'test/raw' } };
    raw.prompt['8'] = { class_type: 'PreviewImage', inputs: { images: ['1', 0] } };
    const { outputNodeIds } = bindWorkflow(asTemplate(raw), {}, { uploadedImages: { photo: 'a.png' } });
    expect(outputNodeIds).toEqual(['3', '7']);
  });
});
