import { join } from 'node:path';
import {
  capabilitiesFromObjectInfo,
  describeRefusal,
  judgeFleet,
  missingOn,
  refusedByFleet,
  type InstanceCapabilityAdvert,
} from '../../src/modules/capabilities';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import { requirementsOf, WorkflowCatalog } from '../../src/workflows';

describe('capabilities from /object_info, and what a job needs', () => {
  let catalog: WorkflowCatalog;
  let full: ComfyUiSimulator;
  let bare: ComfyUiSimulator;

  beforeAll(async () => {
    catalog = await WorkflowCatalog.loadDir(join(__dirname, '../../workflows'));
    full = new ComfyUiSimulator();
    bare = new ComfyUiSimulator({ models: { checkpoints: [] } });
    await full.start();
    await bare.start();
  });

  afterAll(async () => {
    await full.stop();
    await bare.stop();
  });

  async function capsOf(sim: ComfyUiSimulator) {
    const res = await fetch(`${sim.url}/object_info`);
    return capabilitiesFromObjectInfo(await res.json(), 'h', 1);
  }

  it('reads node classes and model files in both combo shapes (classic lists and V3 COMBO options)', () => {
    const caps = capabilitiesFromObjectInfo(
      {
        CheckpointLoaderSimple: { input: { required: { ckpt_name: [['a.safetensors'], { tooltip: 't' }] } } },
        UNETLoader: {
          input: { required: { unet_name: ['COMBO', { options: ['u.safetensors'] }], weight_dtype: [['default']] } },
        },
        KSampler: { input: { required: { sampler_name: [['euler']], seed: ['INT', {}] } } },
        LoraLoader: { input: { optional: { lora_name: [[]] } } },
      },
      'hash',
      5,
    );
    expect(caps.nodeClasses).toEqual(['CheckpointLoaderSimple', 'KSampler', 'LoraLoader', 'UNETLoader']);
    expect(caps.models).toEqual({
      CheckpointLoaderSimple: { ckpt_name: ['a.safetensors'] },
      UNETLoader: { unet_name: ['u.safetensors'] },
      LoraLoader: { lora_name: [] },
    });
  });

  it('txt2img needs its checkpoint (the bound one): missing on an instance without models, present on the full one', async () => {
    const txt2img = catalog.get('txt2img')!;
    const needs = requirementsOf(txt2img, { prompt: 'x' });
    expect(needs.models).toEqual([
      { nodeId: '4', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', file: 'sd_xl_base_1.0.safetensors' },
    ]);
    expect(needs.modelKey).toBe('sd_xl_base_1.0.safetensors');
    expect(missingOn(needs, await capsOf(full))).toEqual([]);
    expect(missingOn(needs, await capsOf(bare))).toEqual([
      {
        kind: 'model',
        nodeId: '4',
        classType: 'CheckpointLoaderSimple',
        input: 'ckpt_name',
        file: 'sd_xl_base_1.0.safetensors',
      },
    ]);
    const other = requirementsOf(txt2img, { prompt: 'x', checkpoint: 'v1-5-pruned-emaonly.safetensors' });
    expect(other.modelKey).toBe('v1-5-pruned-emaonly.safetensors');
  });

  it('edit names three model files; echo-invert none and runs on a server without models', async () => {
    const edit = requirementsOf(catalog.get('edit')!, { prompt: 'x' });
    expect(edit.models.map((m) => m.input).sort()).toEqual(['clip_name', 'unet_name', 'vae_name']);
    const echo = requirementsOf(catalog.get('echo-invert')!, {});
    expect(echo.models).toEqual([]);
    expect(echo.modelKey).toBe('');
    expect(missingOn(echo, await capsOf(bare))).toEqual([]);
  });

  it('a node class the instance lacks is named', async () => {
    const caps = await capsOf(full);
    const needs = { nodeClasses: ['KSampler', 'FancyCustomNode'], models: [], modelKey: '' };
    expect(missingOn(needs, caps)).toEqual([{ kind: 'node', classType: 'FancyCustomNode' }]);
  });

  it('the fleet refuses only when every instance was read and none can run the job', async () => {
    const needs = requirementsOf(catalog.get('txt2img')!, { prompt: 'x', checkpoint: 'nowhere.safetensors' });
    const advert = (instanceId: string, caps: unknown, state: 'up' | 'quarantined' = 'up') =>
      ({ instanceId, state, capabilities: caps, expiresAt: Date.now() + 10_000 }) as InstanceCapabilityAdvert;
    const fullCaps = await capsOf(full);
    const bareCaps = await capsOf(bare);
    const refused = judgeFleet(needs, [advert('b_2', fullCaps), advert('a_1', bareCaps)]);
    expect(refusedByFleet(refused)).toBe(true);
    expect(refused.checked).toEqual(['a_1', 'b_2']);
    expect(describeRefusal(refused)).toEqual([
      { what: 'model "nowhere.safetensors" (CheckpointLoaderSimple.ckpt_name, node 4)', instances: ['a_1', 'b_2'] },
    ]);
    // One instance not read yet might have it: not refused.
    expect(refusedByFleet(judgeFleet(needs, [advert('a_1', bareCaps), advert('c_3', null)]))).toBe(false);
    // The default checkpoint: only a quarantined instance has it — not refused, and none capable is up.
    const sdxl = requirementsOf(catalog.get('txt2img')!, { prompt: 'x' });
    const waiting = judgeFleet(sdxl, [advert('a_1', bareCaps), advert('b_2', fullCaps, 'quarantined')]);
    expect(refusedByFleet(waiting)).toBe(false);
    expect(waiting.capable).toEqual(['b_2']);
    expect(waiting.capableUp).toEqual([]);
  });
});
