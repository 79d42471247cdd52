import { createHash } from 'node:crypto';
import { clamp01, createImage, cropImage, patternImage, resizeImage, solidImage } from '../comfyui-sim-image';
import type { SimImage, SimImageBatch } from '../comfyui-sim.types';
import { MAX_RESOLUTION } from './image.nodes';
import type { NodeRunContext, SimConditioning, SimLatent, SimModel, SimNodeDef } from './sim-node.types';

export const SAMPLERS = [
  'euler',
  'euler_cfg_pp',
  'euler_ancestral',
  'euler_ancestral_cfg_pp',
  'heun',
  'heunpp2',
  'dpm_2',
  'dpm_2_ancestral',
  'lms',
  'dpm_fast',
  'dpm_adaptive',
  'dpmpp_2s_ancestral',
  'dpmpp_2s_ancestral_cfg_pp',
  'dpmpp_sde',
  'dpmpp_sde_gpu',
  'dpmpp_2m',
  'dpmpp_2m_cfg_pp',
  'dpmpp_2m_sde',
  'dpmpp_2m_sde_gpu',
  'dpmpp_3m_sde',
  'dpmpp_3m_sde_gpu',
  'ddpm',
  'lcm',
  'ipndm',
  'ipndm_v',
  'deis',
  'res_multistep',
  'res_multistep_cfg_pp',
  'res_multistep_ancestral',
  'res_multistep_ancestral_cfg_pp',
  'gradient_estimation',
  'gradient_estimation_cfg_pp',
  'er_sde',
  'seeds_2',
  'seeds_3',
  'sa_solver',
  'sa_solver_pece',
  'ddim',
  'uni_pc',
  'uni_pc_bh2',
];

export const SCHEDULERS = [
  'simple',
  'sgm_uniform',
  'karras',
  'exponential',
  'ddim_uniform',
  'beta',
  'normal',
  'linear_quadratic',
  'kl_optimal',
];

/** Largest frame fitting in maxSize x maxSize with the same aspect. */
function previewSize(width: number, height: number, maxSize: number): [number, number] {
  const scale = Math.min(1, maxSize / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function emptyLatent(width: number, height: number, batch: number): SimLatent {
  return { kind: 'latent', width: Math.floor(width / 8) * 8, height: Math.floor(height / 8) * 8, batch, frames: null };
}

/** Blend: `a * (1 - t) + b * t`, same size. */
function mix(a: SimImage, b: SimImage, t: number): SimImage {
  const out = createImage(a.width, a.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = clamp01(a.data[i] * (1 - t) + b.data[i] * t);
  return out;
}

function noiseImage(width: number, height: number, seed: Buffer): SimImage {
  const out = createImage(width, height);
  let state = seed.readUInt32BE(0) || 1;
  for (let i = 0; i < out.data.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out.data[i] = (state >>> 0) / 0xffffffff;
  }
  return out;
}

/**
 * The sampler stand-in: a picture derived from everything that would change a real result (model and its
 * patches, prompts, seed, settings). With a source (img2img latent, or an edit model's reference image) the
 * source shows through a tint, so edits visibly depend on their input.
 */
async function sample(ctx: NodeRunContext, i: Record<string, unknown>, steps: number): Promise<SimLatent> {
  const latent = i.latent_image as SimLatent;
  const positive = i.positive as SimConditioning;
  const negative = i.negative as SimConditioning;
  const model = i.model as SimModel;
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        model.name,
        model.patches,
        positive.text,
        negative.text,
        String(i.seed),
        i.cfg,
        i.sampler_name,
        i.scheduler,
        i.denoise,
      ]),
    )
    .digest();
  const { width, height } = latent;
  const reference = positive.images[0] as SimImage | undefined;
  const sources: (SimImage | null)[] = [];
  for (let b = 0; b < latent.batch; b++) {
    const src = latent.frames?.[b] ?? reference ?? null;
    sources.push(
      src && (src.width !== width || src.height !== height) ? resizeImage(src, width, height, 'bilinear') : src,
    );
  }
  const strength = 0.35 * (i.denoise as number);
  const target = (b: number, w: number, h: number): SimImage => {
    const pattern = patternImage(w, h, createHash('sha256').update(key).update(String(b)).digest());
    const src = sources[b];
    if (!src) return pattern;
    const scaled = src.width === w && src.height === h ? src : resizeImage(src, w, h, 'bilinear');
    return mix(scaled, pattern, strength);
  };
  for (let step = 1; step <= steps; step++) {
    await ctx.step(step, steps, (maxSize) => {
      const [pw, ph] = previewSize(width, height, maxSize);
      return mix(noiseImage(pw, ph, key), target(0, pw, ph), step / steps);
    });
  }
  const frames: SimImageBatch = [];
  for (let b = 0; b < latent.batch; b++) frames.push(target(b, width, height));
  return { kind: 'latent', width, height, batch: latent.batch, frames };
}

export const samplingNodes: SimNodeDef[] = [
  {
    name: 'EmptyLatentImage',
    displayName: 'Empty Latent Image',
    description: 'Create a new batch of empty latent images to be denoised via sampling.',
    category: 'latent',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        width: [
          'INT',
          { default: 512, min: 16, max: MAX_RESOLUTION, step: 8, tooltip: 'The width of the latent images in pixels.' },
        ],
        height: [
          'INT',
          {
            default: 512,
            min: 16,
            max: MAX_RESOLUTION,
            step: 8,
            tooltip: 'The height of the latent images in pixels.',
          },
        ],
        batch_size: ['INT', { default: 1, min: 1, max: 4096, tooltip: 'The number of latent images in the batch.' }],
      },
    }),
    returnTypes: ['LATENT'],
    outputTooltips: ['The empty latent image batch.'],
    run: (_ctx, i) =>
      Promise.resolve({ outputs: [emptyLatent(i.width as number, i.height as number, i.batch_size as number)] }),
  },
  {
    name: 'EmptySD3LatentImage',
    displayName: 'EmptySD3LatentImage',
    description: '',
    category: 'latent/sd3',
    pythonModule: 'comfy_extras.nodes_sd3',
    outputNode: false,
    inputTypes: () => ({
      required: {
        width: ['INT', { default: 1024, min: 16, max: MAX_RESOLUTION, step: 16 }],
        height: ['INT', { default: 1024, min: 16, max: MAX_RESOLUTION, step: 16 }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
      },
    }),
    returnTypes: ['LATENT'],
    run: (_ctx, i) =>
      Promise.resolve({ outputs: [emptyLatent(i.width as number, i.height as number, i.batch_size as number)] }),
  },
  {
    name: 'KSampler',
    displayName: 'KSampler',
    description: 'Uses the provided model, positive and negative conditioning to denoise the latent image.',
    category: 'sampling',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        model: ['MODEL', { tooltip: 'The model used for denoising the input latent.' }],
        seed: [
          'INT',
          {
            default: 0,
            min: 0,
            // 0xffffffffffffffff in ComfyUI; the nearest double here.
            max: 2 ** 64,
            control_after_generate: true,
            tooltip: 'The random seed used for creating the noise.',
          },
        ],
        steps: [
          'INT',
          { default: 20, min: 1, max: 10000, tooltip: 'The number of steps used in the denoising process.' },
        ],
        cfg: [
          'FLOAT',
          {
            default: 8.0,
            min: 0.0,
            max: 100.0,
            step: 0.1,
            round: 0.01,
            tooltip:
              'The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality.',
          },
        ],
        sampler_name: [
          SAMPLERS,
          {
            tooltip:
              'The algorithm used when sampling, this can affect the quality, speed, and style of the generated output.',
          },
        ],
        scheduler: [
          SCHEDULERS,
          { tooltip: 'The scheduler controls how noise is gradually removed to form the image.' },
        ],
        positive: [
          'CONDITIONING',
          { tooltip: 'The conditioning describing the attributes you want to include in the image.' },
        ],
        negative: [
          'CONDITIONING',
          { tooltip: 'The conditioning describing the attributes you want to exclude from the image.' },
        ],
        latent_image: ['LATENT', { tooltip: 'The latent image to denoise.' }],
        denoise: [
          'FLOAT',
          {
            default: 1.0,
            min: 0.0,
            max: 1.0,
            step: 0.01,
            tooltip:
              'The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling.',
          },
        ],
      },
    }),
    returnTypes: ['LATENT'],
    outputTooltips: ['The denoised latent.'],
    run: async (ctx, i) => {
      const steps = ctx.config.samplerSteps ?? (i.steps as number);
      return { outputs: [await sample(ctx, i, steps)] };
    },
  },
  {
    name: 'VAEDecode',
    displayName: 'VAE Decode',
    description: 'Decodes latent images back into pixel space images.',
    category: 'latent',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        samples: ['LATENT', { tooltip: 'The latent to be decoded.' }],
        vae: ['VAE', { tooltip: 'The VAE model used for decoding the latent.' }],
      },
    }),
    returnTypes: ['IMAGE'],
    outputTooltips: ['The decoded image.'],
    run: (_ctx, i) => {
      const latent = i.samples as SimLatent;
      const frames: SimImageBatch = [];
      for (let b = 0; b < latent.batch; b++) {
        frames.push(latent.frames?.[b] ?? solidImage(latent.width, latent.height, 0x7f7f7f));
      }
      return Promise.resolve({ outputs: [frames] });
    },
  },
  {
    name: 'VAEEncode',
    displayName: 'VAE Encode',
    description: '',
    category: 'latent',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({ required: { pixels: ['IMAGE'], vae: ['VAE'] } }),
    returnTypes: ['LATENT'],
    run: (_ctx, i) => {
      const images = i.pixels as SimImageBatch;
      // VAE.encode crops to a multiple of 8, centred, before encoding.
      const frames = images.map((img) => {
        const w = Math.floor(img.width / 8) * 8;
        const h = Math.floor(img.height / 8) * 8;
        if (w === img.width && h === img.height) return img;
        return cropImage(img, Math.floor((img.width % 8) / 2), Math.floor((img.height % 8) / 2), w, h);
      });
      const first = frames[0];
      const latent: SimLatent = {
        kind: 'latent',
        width: first.width,
        height: first.height,
        batch: frames.length,
        frames,
      };
      return Promise.resolve({ outputs: [latent] });
    },
  },
  {
    // The test-only node the captures used (comfy.utils.ProgressBar.update_absolute per step, image passthrough).
    name: 'ProbeProgress',
    displayName: 'ProbeProgress',
    description: '',
    category: 'testing',
    pythonModule: 'custom_nodes.probe_progress',
    outputNode: false,
    inputTypes: () => ({
      required: {
        image: ['IMAGE'],
        steps: ['INT', { default: 3, min: 1, max: 10000 }],
        delay: ['FLOAT', { default: 0.1, min: 0.0, max: 60.0, step: 0.01 }],
        preview: ['BOOLEAN', { default: true }],
      },
    }),
    returnTypes: ['IMAGE'],
    run: async (ctx, i) => {
      const images = i.image as SimImageBatch;
      const steps = ctx.config.samplerSteps ?? (i.steps as number);
      for (let step = 1; step <= steps; step++) {
        const preview =
          i.preview === true
            ? (maxSize: number): SimImage => {
                const [w, h] = previewSize(images[0].width, images[0].height, maxSize);
                return resizeImage(images[0], w, h, 'bilinear');
              }
            : undefined;
        await ctx.step(step, steps, preview);
      }
      return { outputs: [images] };
    },
  },
];
