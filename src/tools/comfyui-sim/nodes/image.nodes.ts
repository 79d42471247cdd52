import { annotatedFilepath, safeRelative } from '../comfyui-sim-file.store';
import {
  blurImage,
  cropImage,
  decodeImageFile,
  invertImage,
  resizeImage,
  solidImage,
  type ResizeMethod,
} from '../comfyui-sim-image';
import { PyException, pyFrame, pyRound } from '../comfyui-sim-python.util';
import type { SimImageBatch } from '../comfyui-sim.types';
import type { NodeEnv, SimNodeDef } from './sim-node.types';

export const MAX_RESOLUTION = 16384;
const UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'];
const IMAGE_EXTENSIONS = /\.(png|jpe?g|webp|gif|bmp|tiff?|avif|heic)$/i;

/** LoadImage's file, resolved like folder_paths.get_annotated_filepath (input dir unless annotated). */
export function loadImagePath(image: string): { type: 'input' | 'output' | 'temp'; rel: string | null } {
  const { name, type } = annotatedFilepath(image);
  return { type: type ?? 'input', rel: safeRelative(name) };
}

function loadImageExists(image: string, env: NodeEnv): boolean {
  const { type, rel } = loadImagePath(image);
  return rel !== null && rel !== '' && env.files.exists(type, rel);
}

export const imageNodes: SimNodeDef[] = [
  {
    name: 'EmptyImage',
    displayName: 'EmptyImage',
    description: '',
    category: 'image',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        width: ['INT', { default: 512, min: 1, max: MAX_RESOLUTION, step: 1 }],
        height: ['INT', { default: 512, min: 1, max: MAX_RESOLUTION, step: 1 }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
        color: ['INT', { default: 0, min: 0, max: 0xffffff, step: 1, display: 'color' }],
      },
    }),
    returnTypes: ['IMAGE'],
    run: (_ctx, i) => {
      const batch: SimImageBatch = [];
      for (let b = 0; b < (i.batch_size as number); b++) {
        batch.push(solidImage(i.width as number, i.height as number, i.color as number));
      }
      return Promise.resolve({ outputs: [batch] });
    },
  },
  {
    name: 'ImageInvert',
    displayName: 'Invert Image',
    description: '',
    category: 'image',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({ required: { image: ['IMAGE'] } }),
    returnTypes: ['IMAGE'],
    run: (_ctx, i) => Promise.resolve({ outputs: [(i.image as SimImageBatch).map(invertImage)] }),
  },
  {
    name: 'ImageScale',
    displayName: 'Upscale Image',
    description: '',
    category: 'image/upscaling',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        image: ['IMAGE'],
        upscale_method: [UPSCALE_METHODS],
        width: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        height: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        crop: [['disabled', 'center']],
      },
    }),
    returnTypes: ['IMAGE'],
    run: (_ctx, i) => {
      const images = i.image as SimImageBatch;
      let width = i.width as number;
      let height = i.height as number;
      if (width === 0 && height === 0) return Promise.resolve({ outputs: [images] });
      const first = images[0];
      if (width === 0) width = Math.max(1, pyRound((first.width * height) / first.height));
      if (height === 0) height = Math.max(1, pyRound((first.height * width) / first.width));
      const method = i.upscale_method as ResizeMethod;
      const out = images.map((img) => {
        let src = img;
        if (i.crop === 'center') {
          const oldAspect = img.width / img.height;
          const newAspect = width / height;
          let x = 0;
          let y = 0;
          if (oldAspect > newAspect) x = pyRound((img.width - img.width * (newAspect / oldAspect)) / 2);
          else if (oldAspect < newAspect) y = pyRound((img.height - img.height * (oldAspect / newAspect)) / 2);
          src = cropImage(img, x, y, img.width - x * 2, img.height - y * 2);
        }
        return resizeImage(src, width, height, method);
      });
      return Promise.resolve({ outputs: [out] });
    },
  },
  {
    name: 'ImageScaleToTotalPixels',
    displayName: 'Scale Image to Total Pixels',
    description: '',
    category: 'image/upscaling',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: () => ({
      required: {
        image: ['IMAGE'],
        upscale_method: [UPSCALE_METHODS],
        megapixels: ['FLOAT', { default: 1.0, min: 0.01, max: 16.0, step: 0.01 }],
      },
    }),
    returnTypes: ['IMAGE'],
    run: (_ctx, i) => {
      const images = i.image as SimImageBatch;
      const total = Math.trunc((i.megapixels as number) * 1024 * 1024);
      const out = images.map((img) => {
        const scale = Math.sqrt(total / (img.width * img.height));
        const width = Math.max(1, pyRound(img.width * scale));
        const height = Math.max(1, pyRound(img.height * scale));
        return resizeImage(img, width, height, i.upscale_method as ResizeMethod);
      });
      return Promise.resolve({ outputs: [out] });
    },
  },
  {
    name: 'ImageBlur',
    displayName: 'Image Blur',
    description: '',
    category: 'image/postprocessing',
    pythonModule: 'comfy_extras.nodes_post_processing',
    outputNode: false,
    inputTypes: () => ({
      required: {
        image: ['IMAGE'],
        blur_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
        sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.1 }],
      },
    }),
    returnTypes: ['IMAGE'],
    run: (_ctx, i) => {
      try {
        const out = (i.image as SimImageBatch).map((img) => blurImage(img, i.blur_radius as number, i.sigma as number));
        return Promise.resolve({ outputs: [out] });
      } catch (err) {
        if (err instanceof PyException && err.traceback.length === 0) {
          throw new PyException(err.pyType, err.message, IMAGE_BLUR_TRACEBACK);
        }
        throw err;
      }
    },
  },
  {
    name: 'LoadImage',
    displayName: 'Load Image',
    description: '',
    category: 'image',
    pythonModule: 'nodes',
    outputNode: false,
    inputTypes: (env) => ({
      required: {
        image: [
          env.files
            .namesIn('input', '')
            .filter((n) => IMAGE_EXTENSIONS.test(n))
            .sort(),
          { image_upload: true },
        ],
      },
    }),
    returnTypes: ['IMAGE', 'MASK'],
    validateInputs: {
      names: ['image'],
      check: (values, env) =>
        typeof values.image === 'string' && loadImageExists(values.image, env)
          ? true
          : `Invalid image file: ${String(values.image)}`,
    },
    isChanged: (inputs, env) => {
      const { type, rel } = loadImagePath(String(inputs.image));
      return (rel !== null && env.files.sha256(type, rel)) || 'missing';
    },
    run: (ctx, i) => {
      const { type, rel } = loadImagePath(i.image as string);
      const bytes = rel === null ? undefined : ctx.env.files.read(type, rel);
      if (!bytes || rel === null) {
        throw new PyException('FileNotFoundError', `[Errno 2] No such file or directory: '${type}/${String(rel)}'`);
      }
      const decoded = decodeImageFile(bytes, `${type}/${rel}`);
      return Promise.resolve({ outputs: [[decoded.image], decoded.mask] });
    },
  },
];

/** ImageBlur's traceback in ComfyUI 0.3.64 (capture 06), paths shortened to repo-relative names. */
const IMAGE_BLUR_TRACEBACK = [
  pyFrame(
    'execution.py',
    496,
    'execute',
    'output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)',
    'await',
  ),
  pyFrame(
    'execution.py',
    315,
    'get_output_data',
    'return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)',
    'await',
  ),
  pyFrame('execution.py', 289, '_async_map_node_over_list', 'await process_inputs(input_dict, i)'),
  pyFrame('execution.py', 277, 'process_inputs', 'result = f(**inputs)', 'f('),
  pyFrame('comfy_api/internal/__init__.py', 149, 'wrapped_func', 'return method(locked_class, **inputs)', 'method('),
  pyFrame('comfy_api/latest/_io.py', 1270, 'EXECUTE_NORMALIZED', 'to_return = cls.execute(*args, **kwargs)', 'cls.'),
  pyFrame(
    'comfy_extras/nodes_post_processing.py',
    98,
    'execute',
    "padded_image = F.pad(image, (blur_radius,blur_radius,blur_radius,blur_radius), 'reflect')",
    'F.pad',
  ),
  pyFrame(
    'site-packages/torch/nn/functional.py',
    5823,
    'pad',
    'return torch._C._nn.pad(input, pad, mode, value)',
    'torch.',
  ),
];
