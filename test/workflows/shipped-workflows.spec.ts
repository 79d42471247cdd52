import { readdir } from 'node:fs/promises';
import { WorkflowCatalog, bindWorkflow, validateInputs, type WorkflowTemplate } from '../../src/workflows';
import { SHIPPED_WORKFLOWS_DIR, pngBytes } from './workflow-fixtures';

/**
 * Input names of the ComfyUI (0.3.64) node classes the shipped templates use. A typo in a template's graph
 * would only show up as a 400 from a real server; this table catches it in CI.
 */
const NODE_INPUTS: Record<string, { required: string[]; optional?: string[] }> = {
  CheckpointLoaderSimple: { required: ['ckpt_name'] },
  CLIPTextEncode: { required: ['text', 'clip'] },
  EmptyLatentImage: { required: ['width', 'height', 'batch_size'] },
  KSampler: {
    required: [
      'model',
      'seed',
      'steps',
      'cfg',
      'sampler_name',
      'scheduler',
      'positive',
      'negative',
      'latent_image',
      'denoise',
    ],
  },
  VAEDecode: { required: ['samples', 'vae'] },
  VAEEncode: { required: ['pixels', 'vae'] },
  SaveImage: { required: ['images', 'filename_prefix'] },
  LoadImage: { required: ['image'] },
  EmptyImage: { required: ['width', 'height', 'batch_size', 'color'] },
  ImageInvert: { required: ['image'] },
  UNETLoader: { required: ['unet_name', 'weight_dtype'] },
  CLIPLoader: { required: ['clip_name', 'type'], optional: ['device'] },
  VAELoader: { required: ['vae_name'] },
  TextEncodeQwenImageEdit: { required: ['clip', 'prompt'], optional: ['vae', 'image'] },
  ImageScaleToTotalPixels: { required: ['image', 'upscale_method', 'megapixels'] },
  ModelSamplingAuraFlow: { required: ['model', 'shift'] },
  CFGNorm: { required: ['model', 'strength'] },
};

const MODEL_FREE_CLASSES = new Set(['EmptyImage', 'ImageInvert', 'LoadImage', 'SaveImage']);

let catalog: WorkflowCatalog;
beforeAll(async () => {
  catalog = await WorkflowCatalog.loadDir(SHIPPED_WORKFLOWS_DIR);
});

function get(name: string): WorkflowTemplate {
  return catalog.get(name)!;
}

describe('shipped workflows', () => {
  it('all load, one per *.json file', async () => {
    const files = (await readdir(SHIPPED_WORKFLOWS_DIR)).filter((f) => f.endsWith('.json'));
    expect(catalog.names()).toEqual(['echo-invert', 'edit', 'invert', 'txt2img']);
    expect(files).toHaveLength(catalog.size);
  });

  it.each(['echo-invert', 'edit', 'invert', 'txt2img'])('%s uses real ComfyUI node inputs', (name) => {
    for (const [id, node] of Object.entries(get(name).prompt)) {
      const known = NODE_INPUTS[node.class_type];
      expect({ id, class_type: node.class_type, known: known !== undefined }).toEqual({
        id,
        class_type: node.class_type,
        known: true,
      });
      const keys = Object.keys(node.inputs);
      for (const required of known.required)
        expect({ id, keys }).toEqual({ id, keys: expect.arrayContaining([required]) });
      const allowed = [...known.required, ...(known.optional ?? [])];
      expect({ id, unexpected: keys.filter((k) => !allowed.includes(k)) }).toEqual({ id, unexpected: [] });
    }
  });

  it.each(['echo-invert', 'invert'])('%s needs no model files', (name) => {
    const classes = Object.values(get(name).prompt).map((node) => node.class_type);
    expect(classes.filter((c) => !MODEL_FREE_CLASSES.has(c))).toEqual([]);
  });

  it('keeps filename_prefix fixed per workflow', () => {
    for (const name of catalog.names()) {
      const saves = Object.values(get(name).prompt).filter((node) => node.class_type === 'SaveImage');
      expect(saves.map((node) => node.inputs.filename_prefix)).toEqual([`comfy-relay/${name}`]);
    }
  });

  it('txt2img: inputs and model file parameter', () => {
    const inputs = get('txt2img').inputs;
    expect(Object.keys(inputs)).toEqual([
      'prompt',
      'negative',
      'seed',
      'steps',
      'cfg',
      'width',
      'height',
      'checkpoint',
    ]);
    expect(inputs.checkpoint).toMatchObject({ type: 'string', default: 'sd_xl_base_1.0.safetensors' });
    expect(inputs.checkpoint.bind).toEqual(['4.inputs.ckpt_name']);
  });

  it('edit: image + instruction, Qwen-Image-Edit model files as inputs', () => {
    const edit = get('edit');
    expect(Object.keys(edit.inputs)).toEqual(['prompt', 'image', 'seed', 'steps', 'cfg', 'unet', 'clip', 'vae']);
    expect(edit.prompt['6'].class_type).toBe('TextEncodeQwenImageEdit');
    expect(edit.prompt['2'].inputs.type).toBe('qwen_image');
    expect(edit.inputs.image.bind).toEqual(['10.inputs.image']);
  });

  it('every workflow binds with its defaults and minimal inputs', () => {
    const minimal: Record<string, Record<string, unknown>> = {
      txt2img: { prompt: 'a cat' },
      edit: { prompt: 'make it night', image: pngBytes().toString('base64') },
      'echo-invert': {},
      invert: { image: pngBytes().toString('base64') },
    };
    for (const name of catalog.names()) {
      const template = get(name);
      const result = validateInputs(template, minimal[name], { maxImageBytes: 1 << 20 });
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      const uploadedImages = Object.fromEntries(
        Object.entries(template.inputs)
          .filter(([, spec]) => spec.type === 'image')
          .map(([input]) => [input, `upload-${input}.png`]),
      );
      const bound = bindWorkflow(template, result.values, { uploadedImages });
      expect(bound.outputNodeIds).toEqual([template.output?.node]);
      expect(JSON.parse(JSON.stringify(bound.prompt))).toEqual(bound.prompt);
    }
  });

  it('invert and edit accept a prompt like their model-backed counterparts', () => {
    const invert = validateInputs(
      get('invert'),
      { image: pngBytes().toString('base64'), prompt: 'caption' },
      {
        maxImageBytes: 1 << 20,
      },
    );
    expect(invert.ok).toBe(true);
    const echo = validateInputs(get('echo-invert'), { prompt: 'x'.repeat(2001) }, { maxImageBytes: 1 });
    expect(echo.ok).toBe(false);
  });
});
