import type Redis from 'ioredis';
import { join } from 'node:path';
import { PoolCapabilityStore, type InstanceCapabilityAdvert } from '../../src/modules/capabilities';
import { CapablePeerFinder } from '../../src/modules/gpu/runner/capable-peer.finder';
import { GpuWorkerAdvertStore, type GpuWorkerAdvert } from '../../src/modules/generation';
import { StreamKeys } from '../../src/streams/stream-keys';
import { WorkflowCatalog, type WorkflowTemplate } from '../../src/workflows';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

/** Which peer a gpu process hands a job it cannot run to (adverts in a real Redis). */
describe('CapablePeerFinder', () => {
  const CKPT = 'sd_xl_base_1.0.safetensors';
  let redis: Redis;
  let keys: StreamKeys;
  let workers: GpuWorkerAdvertStore;
  let capabilities: PoolCapabilityStore;
  let finder: CapablePeerFinder;
  let txt2img: WorkflowTemplate;

  beforeAll(async () => {
    const catalog = await WorkflowCatalog.loadDir(join(__dirname, '../../workflows'));
    txt2img = catalog.get('txt2img')!;
  });

  beforeEach(() => {
    redis = testRedis();
    keys = new StreamKeys(uniquePrefix('peers'));
    workers = new GpuWorkerAdvertStore(redis, keys);
    capabilities = new PoolCapabilityStore(redis, keys);
    finder = new CapablePeerFinder(workers, capabilities);
  });

  afterEach(async () => {
    await cleanupPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  const inputs = { prompt: 'a lighthouse' };
  const later = () => Date.now() + 60_000;

  async function instance(
    id: string,
    checkpoints: string[] | null,
    state: 'up' | 'quarantined' = 'up',
    expiresAt = later(),
  ) {
    const nodeClasses = [...new Set(Object.values(txt2img.prompt).map((n) => n.class_type))].sort();
    const advert: InstanceCapabilityAdvert = {
      instanceId: id,
      state,
      capabilities:
        checkpoints === null
          ? null
          : { nodeClasses, models: { CheckpointLoaderSimple: { ckpt_name: checkpoints } }, hash: id, readAt: 0 },
      expiresAt,
    };
    await capabilities.publish([advert]);
  }

  async function worker(field: string, advert: Partial<GpuWorkerAdvert> & { pool: string[] }) {
    await workers.publish(field, { slots: 2, instances: advert.pool, expiresAt: later(), ...advert });
  }

  it('finds a live peer with an instance that has the model, never itself, never one without a consumer', async () => {
    await instance('bare', []);
    await instance('full', [CKPT]);
    await worker('a', { consumer: 'gpu-a-1', pool: ['bare'] });
    await worker('b', { consumer: 'gpu-b-1', pool: ['full'] });
    await worker('c', { pool: ['full'] }); // not consuming yet (or shutting down)
    expect(await finder.find(txt2img, inputs, 'gpu-a-1')).toBe('gpu-b-1');
    expect(await finder.find(txt2img, inputs, 'gpu-b-1')).toBeNull();
    expect(await finder.find(txt2img, { ...inputs, checkpoint: 'other.safetensors' }, 'gpu-a-1')).toBeNull();
  });

  it('ignores expired adverts and instances not read yet', async () => {
    await instance('full', [CKPT]);
    await instance('unread', null);
    await worker('b', { consumer: 'gpu-b-1', pool: ['full'], expiresAt: Date.now() - 1 });
    await worker('c', { consumer: 'gpu-c-1', pool: ['unread'] });
    expect(await finder.find(txt2img, inputs, 'gpu-a-1')).toBeNull();
  });

  it('prefers the peer driving the instance of an earlier placement, then peers with a capable instance up', async () => {
    await instance('full-1', [CKPT]);
    await instance('full-2', [CKPT], 'quarantined');
    await worker('b', { consumer: 'gpu-b-1', pool: ['full-1'] });
    await worker('c', { consumer: 'gpu-c-1', pool: ['full-2'] });
    for (let i = 0; i < 20; i++) expect(await finder.find(txt2img, inputs, 'gpu-a-1')).toBe('gpu-b-1');
    expect(await finder.find(txt2img, inputs, 'gpu-a-1', 'full-2')).toBe('gpu-c-1');
  });

  it('spreads hand-offs by free capacity: slots over the jobs a peer already holds', async () => {
    await instance('full-1', [CKPT]);
    await instance('full-2', [CKPT]);
    await worker('b', { consumer: 'gpu-b-1', pool: ['full-1'], slots: 1, held: 3 }); // weight 1/4
    await worker('c', { consumer: 'gpu-c-1', pool: ['full-2'], slots: 4, held: 0 }); // weight 4
    const pick = (r: number) => finder.find(txt2img, inputs, 'gpu-a-1', undefined, () => r);
    // Weights 0.25 and 4 of 4.25: the first 5.9 % of the range goes to b, the rest to c.
    expect(await pick(0.05)).toBe('gpu-b-1');
    expect(await pick(0.07)).toBe('gpu-c-1');
    expect(await pick(0.99)).toBe('gpu-c-1');
  });
});
