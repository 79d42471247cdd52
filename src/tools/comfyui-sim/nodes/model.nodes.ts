import type { SimImageBatch } from '../comfyui-sim.types';
import type { InputSpec, SimClip, SimConditioning, SimModel, SimNodeDef, SimVae } from './sim-node.types';

/** Loaders, model patches and text encoders: no pixels, just named stand-ins that feed the sampler's hash. */

const CLIP_TYPES = [
  'stable_diffusion',
  'stable_cascade',
  'sd3',
  'stable_audio',
  'mochi',
  'ltxv',
  'pixart',
  'cosmos',
  'lumina2',
  'wan',
  'hidream',
  'chroma',
  'ace',
  'omnigen2',
  'qwen_image',
  'hunyuan_image',
];

const PROMPT_TEXT: InputSpec = ['STRING', { multiline: true, dynamicPrompts: true }];

function patched(model: SimModel, patch: string): SimModel {
  return { kind: 'model', name: model.name, patches: [...model.patches, patch] };
}

function conditioning(text: string, images: SimImageBatch[]): SimConditioning {
  return { kind: 'conditioning', text, images: images.flat() };
}

export const modelNodes: SimNodeDef[] = [
  {
    name: 'CheckpointLoaderSimple',
    modelInputs: ['ckpt_name'],
    displayName: 'Load Checkpoint',
    description: 'Loads a diffusion model checkpoint, diffusion models are used to denoise latents.',
    category: 'loaders',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({
      required: {
        ckpt_name: [env.models.checkpoints, { tooltip: 'The name of the checkpoint (model) to load.' }],
      },
    }),
    returnTypes: ['MODEL', 'CLIP', 'VAE'],
    outputTooltips: [
      'The model used for denoising latents.',
      'The CLIP model used for encoding text prompts.',
      'The VAE model used for encoding and decoding images to and from latent space.',
    ],
    run: (_ctx, i) => {
      const name = i.ckpt_name as string;
      const model: SimModel = { kind: 'model', name, patches: [] };
      const clip: SimClip = { kind: 'clip', name };
      const vae: SimVae = { kind: 'vae', name };
      return Promise.resolve({ outputs: [model, clip, vae] });
    },
  },
  {
    name: 'UNETLoader',
    modelInputs: ['unet_name'],
    displayName: 'Load Diffusion Model',
    description: '',
    category: 'advanced/loaders',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({
      required: {
        unet_name: [env.models.diffusionModels],
        weight_dtype: [['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2']],
      },
    }),
    returnTypes: ['MODEL'],
    run: (_ctx, i) => Promise.resolve({ outputs: [{ kind: 'model', name: i.unet_name as string, patches: [] }] }),
  },
  {
    name: 'CLIPLoader',
    modelInputs: ['clip_name'],
    displayName: 'Load CLIP',
    description: '',
    category: 'advanced/loaders',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({
      required: { clip_name: [env.models.textEncoders], type: [CLIP_TYPES] },
      optional: { device: [['default', 'cpu'], { advanced: true }] },
    }),
    returnTypes: ['CLIP'],
    run: (_ctx, i) => Promise.resolve({ outputs: [{ kind: 'clip', name: i.clip_name as string }] }),
  },
  {
    name: 'VAELoader',
    modelInputs: ['vae_name'],
    displayName: 'Load VAE',
    description: '',
    category: 'loaders',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({ required: { vae_name: [env.models.vaes] } }),
    returnTypes: ['VAE'],
    run: (_ctx, i) => Promise.resolve({ outputs: [{ kind: 'vae', name: i.vae_name as string }] }),
  },
  {
    name: 'LoraLoaderModelOnly',
    modelInputs: ['lora_name'],
    displayName: 'LoraLoaderModelOnly',
    description: '',
    category: 'loaders',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({
      required: {
        model: ['MODEL'],
        lora_name: [env.models.loras],
        strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01 }],
      },
    }),
    returnTypes: ['MODEL'],
    run: (_ctx, i) =>
      Promise.resolve({
        outputs: [patched(i.model as SimModel, `lora:${String(i.lora_name)}:${String(i.strength_model)}`)],
      }),
  },
  {
    name: 'ModelSamplingAuraFlow',
    displayName: 'ModelSamplingAuraFlow',
    description: '',
    category: 'advanced/model',
    pythonModule: 'comfy_extras.nodes_model_advanced',
    outputNode: false,
    inputTypes: () => ({
      required: { model: ['MODEL'], shift: ['FLOAT', { default: 1.73, min: 0.0, max: 100.0, step: 0.01 }] },
    }),
    returnTypes: ['MODEL'],
    run: (_ctx, i) => Promise.resolve({ outputs: [patched(i.model as SimModel, `shift:${String(i.shift)}`)] }),
  },
  {
    name: 'CFGNorm',
    displayName: 'CFGNorm',
    description: '',
    category: 'advanced/guidance',
    pythonModule: 'comfy_extras.nodes_cfg',
    outputNode: false,
    inputTypes: () => ({
      required: { model: ['MODEL'], strength: ['FLOAT', { default: 1.0, min: 0.0, max: 100.0, step: 0.01 }] },
    }),
    returnTypes: ['MODEL'],
    returnNames: ['patched_model'],
    run: (_ctx, i) => Promise.resolve({ outputs: [patched(i.model as SimModel, `cfgnorm:${String(i.strength)}`)] }),
  },
  {
    name: 'CLIPTextEncode',
    displayName: 'CLIP Text Encode (Prompt)',
    description:
      'Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.',
    category: 'conditioning',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        text: ['STRING', { multiline: true, dynamicPrompts: true, tooltip: 'The text to be encoded.' }],
        clip: ['CLIP', { tooltip: 'The CLIP model used for encoding the text.' }],
      },
    }),
    returnTypes: ['CONDITIONING'],
    outputTooltips: ['A conditioning containing the embedded text used to guide the diffusion model.'],
    run: (_ctx, i) => Promise.resolve({ outputs: [conditioning(i.text as string, [])] }),
  },
  {
    name: 'TextEncodeQwenImageEdit',
    displayName: 'TextEncodeQwenImageEdit',
    description: '',
    category: 'advanced/conditioning',
    pythonModule: 'comfy_extras.nodes_qwen',
    outputNode: false,
    inputTypes: () => ({
      required: { clip: ['CLIP'], prompt: PROMPT_TEXT },
      optional: { vae: ['VAE'], image: ['IMAGE'] },
    }),
    returnTypes: ['CONDITIONING'],
    run: (_ctx, i) =>
      Promise.resolve({
        outputs: [conditioning(i.prompt as string, i.image === undefined ? [] : [i.image as SimImageBatch])],
      }),
  },
  {
    name: 'TextEncodeQwenImageEditPlus',
    displayName: 'TextEncodeQwenImageEditPlus',
    description: '',
    category: 'advanced/conditioning',
    pythonModule: 'comfy_extras.nodes_qwen',
    outputNode: false,
    inputTypes: () => ({
      required: { clip: ['CLIP'], prompt: PROMPT_TEXT },
      optional: { vae: ['VAE'], image1: ['IMAGE'], image2: ['IMAGE'], image3: ['IMAGE'] },
    }),
    returnTypes: ['CONDITIONING'],
    run: (_ctx, i) => {
      const images = [i.image1, i.image2, i.image3].filter((x) => x !== undefined) as SimImageBatch[];
      return Promise.resolve({ outputs: [conditioning(i.prompt as string, images)] });
    },
  },
];
