import type { ComfyPrompt } from '../../src/modules/gpu/comfyui/comfyui.types';
import { resultNodesToTemp } from '../../src/modules/gpu/runner/temp-results';

const graph = (): ComfyPrompt => ({
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': {
    class_type: 'SaveImage',
    inputs: { filename_prefix: 'comfy-relay/echo-invert', images: ['2', 0] },
    _meta: { title: 'Save Image' },
  },
  '4': { class_type: 'SaveImage', inputs: { filename_prefix: 'debug', images: ['1', 0] } },
  '5': { class_type: 'Image Save', inputs: { images: ['2', 0], output_path: 'custom' } },
});

describe('result nodes written to ComfyUI temp/', () => {
  it('submits the result SaveImage as PreviewImage (no filename_prefix) and leaves the template alone', () => {
    const template = graph();
    const submitted = resultNodesToTemp(template, ['3']);
    expect(submitted['3']).toEqual({
      class_type: 'PreviewImage',
      inputs: { images: ['2', 0] },
      _meta: { title: 'Save Image' },
    });
    // Not a result: written where the template says.
    expect(submitted['4']).toEqual(template['4']);
    expect(template).toEqual(graph());
  });

  it('leaves a custom saver named as the result as it is', () => {
    expect(resultNodesToTemp(graph(), ['5'])['5']).toEqual(graph()['5']);
  });
});
