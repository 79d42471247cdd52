import type Redis from 'ioredis';
import { capabilitiesFromObjectInfo, PoolCapabilityStore } from '../../src/modules/capabilities';
import { StreamKeys } from '../../src/streams/stream-keys';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';
import { cli } from './cli-harness';

describe('cli stats: ComfyUI instances and what they can run', () => {
  let redis: Redis;
  let prefix: string;

  beforeAll(() => {
    redis = testRedis();
    prefix = uniquePrefix('cli-caps');
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('lists each published instance with its node count and model files (text and --json)', async () => {
    const caps = (checkpoints: string[]) =>
      capabilitiesFromObjectInfo(
        {
          CheckpointLoaderSimple: { input: { required: { ckpt_name: [checkpoints, {}] } } },
          KSampler: { input: { required: {} } },
        },
        'hash-of-object-info',
        Date.now(),
      );
    await new PoolCapabilityStore(redis, new StreamKeys(prefix)).publish([
      { instanceId: 'gpu-a_8188', state: 'up', capabilities: caps([]), expiresAt: Date.now() + 60_000 },
      {
        instanceId: 'gpu-b_8188',
        state: 'quarantined',
        capabilities: caps(['sd_xl_base_1.0.safetensors']),
        expiresAt: Date.now() + 60_000,
      },
      { instanceId: 'gpu-c_8188', state: 'unknown', capabilities: null, expiresAt: Date.now() - 1_000 },
    ]);
    const json = JSON.parse((await cli(prefix, ['stats', '--json'])).out);
    expect(json.instances).toEqual([
      expect.objectContaining({ instance: 'gpu-a_8188', state: 'up', live: true }),
      expect.objectContaining({ instance: 'gpu-b_8188', state: 'quarantined', live: true }),
      { instance: 'gpu-c_8188', state: 'unknown', live: false, capabilities: null },
    ]);
    expect(json.instances[1].capabilities).toMatchObject({
      nodeClasses: 2,
      models: { ckpt_name: ['sd_xl_base_1.0.safetensors'] },
    });
    const text = (await cli(prefix, ['stats'])).out;
    expect(text).toContain('ComfyUI instances: 2 published');
    expect(text).toMatch(/gpu-a_8188 +up +2 +\(none\)/);
    expect(text).toMatch(/gpu-b_8188 +quarantined +2 +sd_xl_base_1\.0\.safetensors/);
    expect(text).toMatch(/gpu-c_8188 +expired +\?/);
  });
});
