import { ComfyUiClient } from '../../src/modules/gpu/comfyui/comfyui.client';
import type { ComfyPrompt } from '../../src/modules/gpu/comfyui/comfyui.types';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';

function checkpointPrompt(ckpt: string, seed: number): ComfyPrompt {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 16, height: 16, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'x', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed,
        steps: 1,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        denoise: 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['6', 0],
        latent_image: ['5', 0],
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'PreviewImage', inputs: { images: ['8', 0] } },
  } as ComfyPrompt;
}

describe('simulator: per-instance model lists and the model-switch delay', () => {
  let sim: ComfyUiSimulator;
  let client: ComfyUiClient;

  afterEach(async () => {
    await client.close();
    await sim.stop();
  });

  it('counts a load when another checkpoint comes in (not for the same one or a model-free prompt)', async () => {
    sim = new ComfyUiSimulator({ modelSwitchMs: 30 });
    await sim.start();
    client = new ComfyUiClient({ baseUrl: sim.url, clientId: 'models-test' });
    const sdxl = 'sd_xl_base_1.0.safetensors';
    const sd15 = 'v1-5-pruned-emaonly.safetensors';
    const echo = {
      '1': { class_type: 'EmptyImage', inputs: { width: 4, height: 4, batch_size: 1, color: 0 } },
      '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
    } as ComfyPrompt;
    const runs: ComfyPrompt[] = [
      checkpointPrompt(sdxl, 1),
      checkpointPrompt(sdxl, 2),
      echo,
      checkpointPrompt(sdxl, 3),
      checkpointPrompt(sd15, 4),
      checkpointPrompt(sdxl, 5),
    ];
    for (const [i, prompt] of runs.entries())
      await client.run(prompt, { promptId: `00000000-0000-4000-8000-00000000000${i}` });
    expect(sim.stats().succeeded).toBe(runs.length);
    expect(sim.stats().modelLoads).toBe(3); // the first load, sd15, sdxl again
    expect(sim.stats().modelSwitches).toBe(2);
  });

  it('an instance whose checkpoint list is empty refuses a checkpoint prompt the way ComfyUI does', async () => {
    sim = new ComfyUiSimulator({ models: { checkpoints: [] } });
    await sim.start();
    client = new ComfyUiClient({ baseUrl: sim.url, clientId: 'models-test' });
    await expect(
      client.run(checkpointPrompt('sd_xl_base_1.0.safetensors', 1), {
        promptId: '00000000-0000-4000-8000-0000000000aa',
      }),
    ).rejects.toThrow(/Value not in list: ckpt_name: 'sd_xl_base_1.0.safetensors' not in \[\]/);
    expect(sim.stats().modelLoads).toBe(0);
  });
});
