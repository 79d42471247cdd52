import type { ComfyPrompt } from '../comfyui/comfyui.types';

/**
 * ComfyUI (0.3.64) has no route that deletes a file, and SaveImage writes every result into its output/ folder for
 * good, although we fetch each result over /view and keep our own copy. PreviewImage is SaveImage writing into
 * temp/ instead, which ComfyUI empties at every start and clean exit, so result nodes are submitted as PreviewImage.
 * It has no `filename_prefix` (it names files `ComfyUI_temp_<random>_NNNNN_.png`) and compresses less (PNG level 1
 * instead of 4): the same pixels in a somewhat larger file. Other output nodes (custom savers) are left as they are.
 */
export function resultNodesToTemp(prompt: ComfyPrompt, resultNodeIds: readonly string[]): ComfyPrompt {
  const submitted: ComfyPrompt = { ...prompt };
  for (const id of resultNodeIds) {
    const node = prompt[id];
    if (node?.class_type !== 'SaveImage') continue;
    submitted[id] = { ...node, class_type: 'PreviewImage', inputs: { images: node.inputs.images } };
  }
  return submitted;
}
