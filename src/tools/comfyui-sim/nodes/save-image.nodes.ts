import { posix } from 'node:path';
import { safeRelative, type SimFileStore } from '../comfyui-sim-file.store';
import { encodePng } from '../comfyui-sim-image';
import { PyException, pyJsonDumps } from '../comfyui-sim-python.util';
import type { DirType, JsonObject, SimFileRef, SimImageBatch } from '../comfyui-sim.types';
import type { NodeRunContext, SimNodeDef } from './sim-node.types';

const SAVE_DESCRIPTION = 'Saves the input images to your ComfyUI output directory.';

/** folder_paths.get_save_image_path: `%vars%`, subfolder from the prefix, next free counter for the prefix. */
export function saveImagePath(
  files: SimFileStore,
  type: DirType,
  prefix: string,
  width: number,
  height: number,
): { subfolder: string; filename: string; counter: number } {
  if (prefix.includes('%')) prefix = computeVars(prefix, width, height);
  const normalized = posix.normalize(prefix);
  const dir = posix.dirname(normalized);
  const subfolder = dir === '.' ? '' : dir;
  const filename = posix.basename(normalized);
  const safe = safeRelative(subfolder);
  if (safe === null) {
    throw new PyException(
      'Exception',
      `**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: ${subfolder}\n         output_dir: ${type}`,
    );
  }
  let counter = 0;
  for (const name of files.namesIn(type, safe)) {
    const head = name.slice(0, filename.length + 1);
    if (head.slice(0, -1) !== filename || head.slice(-1) !== '_') continue;
    const digits = Number.parseInt(name.slice(filename.length + 1).split('_')[0], 10);
    counter = Math.max(counter, Number.isNaN(digits) ? 0 : digits);
  }
  return { subfolder, filename, counter: counter + 1 };
}

function computeVars(input: string, width: number, height: number): string {
  const now = new Date();
  const two = (n: number): string => String(n).padStart(2, '0');
  return input
    .replaceAll('%width%', String(width))
    .replaceAll('%height%', String(height))
    .replaceAll('%year%', String(now.getFullYear()))
    .replaceAll('%month%', two(now.getMonth() + 1))
    .replaceAll('%day%', two(now.getDate()))
    .replaceAll('%hour%', two(now.getHours()))
    .replaceAll('%minute%', two(now.getMinutes()))
    .replaceAll('%second%', two(now.getSeconds()));
}

function saveImages(
  ctx: NodeRunContext,
  images: SimImageBatch,
  prefix: string,
  type: DirType,
  level: number,
): { ui: { images: SimFileRef[] }; outputs: unknown[] } {
  const first = images[0];
  const path = saveImagePath(ctx.env.files, type, prefix, first.width, first.height);
  let counter = path.counter;
  const text: Record<string, string> = { prompt: pyJsonDumps(ctx.prompt) };
  const extra = ctx.extraData.extra_pnginfo;
  if (extra !== null && typeof extra === 'object' && !Array.isArray(extra)) {
    for (const [key, value] of Object.entries(extra as JsonObject)) text[key] = pyJsonDumps(value);
  }
  const results: SimFileRef[] = [];
  images.forEach((image, batch) => {
    const file = `${path.filename.replaceAll('%batch_num%', String(batch))}_${String(counter).padStart(5, '0')}_.png`;
    const rel = path.subfolder === '' ? file : `${path.subfolder}/${file}`;
    ctx.env.files.write(type, rel, encodePng(image, { level, text }));
    results.push({ filename: file, subfolder: path.subfolder, type });
    counter++;
  });
  return { ui: { images: results }, outputs: [] };
}

export const saveImageNodes: SimNodeDef[] = [
  {
    name: 'SaveImage',
    displayName: 'Save Image',
    description: SAVE_DESCRIPTION,
    category: 'image',
    pythonModule: 'nodes',
    outputNode: true,
    inputTypes: () => ({
      required: {
        images: ['IMAGE', { tooltip: 'The images to save.' }],
        filename_prefix: [
          'STRING',
          {
            default: 'ComfyUI',
            tooltip:
              'The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.',
          },
        ],
      },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    }),
    returnTypes: [],
    run: (ctx, i) =>
      Promise.resolve(saveImages(ctx, i.images as SimImageBatch, i.filename_prefix as string, 'output', 4)),
  },
  {
    name: 'PreviewImage',
    displayName: 'Preview Image',
    description: SAVE_DESCRIPTION,
    category: 'image',
    pythonModule: 'nodes',
    outputNode: true,
    inputTypes: () => ({
      required: { images: ['IMAGE'] },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    }),
    returnTypes: [],
    run: (ctx, i) =>
      Promise.resolve(saveImages(ctx, i.images as SimImageBatch, `ComfyUI_temp_${ctx.tempSuffix}`, 'temp', 1)),
  },
];
