import type Redis from 'ioredis';
import { InstanceLeaseStore } from '../../src/modules/gpu/pool/instance-lease.store';
import { InstancePool, NoCapableInstanceError, type PlacedLease } from '../../src/modules/gpu/pool/instance-pool';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import type { WorkflowRequirements } from '../../src/workflows';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

const needs = (file: string): { requirements: WorkflowRequirements } => ({
  requirements: {
    nodeClasses: ['CheckpointLoaderSimple', 'KSampler'],
    models: [{ nodeId: '4', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', file }],
    modelKey: file,
  },
});
const A = needs('sd_xl_base_1.0.safetensors');
const B = needs('v1-5-pruned-emaonly.safetensors');
const MODEL_FREE = { requirements: { nodeClasses: ['EmptyImage', 'ImageInvert'], models: [], modelKey: '' } };

describe('instance pool: routing by capability and work-conserving model affinity', () => {
  let redis: Redis;
  let prefix: string;
  const sims: ComfyUiSimulator[] = [];
  const pools: InstancePool[] = [];

  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('affinity');
  });

  afterEach(async () => {
    for (const pool of pools.splice(0)) await pool.close();
    for (const sim of sims.splice(0)) await sim.stop();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  async function startPool(models: ConstructorParameters<typeof ComfyUiSimulator>[0][], affinity = true) {
    const urls = [];
    for (const options of models) {
      const sim = new ComfyUiSimulator(options);
      sims.push(sim);
      urls.push((await sim.start()).url);
    }
    const pool = new InstancePool({
      urls,
      redis,
      leaseKey: (id) => `${prefix}gpu:leases:${id}`,
      clientIdBase: `affinity-${prefix}`,
      probeIntervalMs: 100,
      modelTailsKey: affinity ? `${prefix}gpu:model-tails` : undefined,
    });
    pools.push(pool);
    await pool.start();
    return pool;
  }

  const signal = () => AbortSignal.timeout(15_000);

  it('keeps each instance on its model, and a job for a full instance waits only while the other is busy', async () => {
    const pool = await startPool([{}, {}]);
    const a1 = await pool.acquire(signal(), undefined, A);
    const b1 = await pool.acquire(signal(), undefined, B);
    const p = a1.instance;
    const q = b1.instance;
    expect(q).not.toBe(p); // an idle instance is never left unused
    const a2 = await pool.acquire(signal(), undefined, A);
    expect(a2.instance).toBe(p); // queued behind its own model, not on q's free slot
    const b2 = await pool.acquire(signal(), undefined, B);
    expect(b2.instance).toBe(q);

    await b1.release();
    // p (model A) is full, q is busy with model B and has a free slot: an A job waits rather than switch q.
    const store = new InstanceLeaseStore(redis, (id) => `${prefix}gpu:leases:${id}`, 30_000, 2);
    expect(await store.acquireWithAffinity([p.id, q.id], A.requirements.modelKey, `${prefix}gpu:model-tails`)).toBe(
      null,
    );

    // Work-conserving: once q is idle, the waiting A job takes it (switching it) instead of waiting for p.
    let placed: PlacedLease | undefined;
    const waiting = pool.acquire(signal(), undefined, A).then((l) => (placed = l));
    await b2.release();
    await pollUntil(
      () => placed,
      (l) => l !== undefined,
      { timeoutMs: 5_000, description: 'the A job placed' },
    );
    expect(placed!.instance).toBe(q);
    expect(q.modelSwitches).toBe(1);
    await waiting;
    for (const lease of [a1, a2, placed!]) await lease.release();
  });

  it('without affinity (GPU_MODEL_AFFINITY=off) a free slot takes the job, whatever model its instance ran', async () => {
    const pool = await startPool([{}, {}], false);
    const held: PlacedLease[] = [];
    for (const job of [A, B, A, B]) held.push(await pool.acquire(signal(), undefined, job));
    const freed = held.findIndex((l) => l !== held[0] && l.instance !== held[0].instance);
    await held[freed].release();
    const a3 = await pool.acquire(signal(), undefined, A);
    expect(a3.instance).toBe(held[freed].instance);
    expect(await redis.exists(`${prefix}gpu:model-tails`)).toBe(0);
    for (const lease of [...held.filter((_, i) => i !== freed), a3]) await lease.release();
  });

  it('sends a job only where its model is, model-free jobs anywhere, and refuses a job no instance can run', async () => {
    const pool = await startPool([{ models: { checkpoints: [] } }, {}]);
    const [bare, full] = pool.all();
    expect(bare.capabilities?.models.CheckpointLoaderSimple.ckpt_name).toEqual([]);
    const held: PlacedLease[] = [];
    for (let i = 0; i < 2; i++) held.push(await pool.acquire(signal(), undefined, A));
    expect(held.map((l) => l.instance)).toEqual([full, full]);
    held.push(await pool.acquire(signal(), undefined, MODEL_FREE));
    expect(held[2].instance).toBe(bare);
    await expect(pool.acquire(signal(), undefined, needs('nowhere.safetensors'))).rejects.toThrow(
      NoCapableInstanceError,
    );
    await expect(pool.acquire(signal(), undefined, needs('nowhere.safetensors'))).rejects.toThrow(
      /model "nowhere.safetensors" \(CheckpointLoaderSimple.ckpt_name, node 4\)/,
    );
    for (const lease of held) await lease.release();
  });

  it('a job only a quarantined instance can run waits for it and runs there once it is back', async () => {
    const pool = await startPool([{ models: { checkpoints: [] } }, {}]);
    const [bare, full] = pool.all();
    await sims[1].crash();
    pool.reportFailure(full, 'test: crashed');
    let placed: PlacedLease | undefined;
    const waiting = pool.acquire(signal(), undefined, A).then((l) => (placed = l));
    // The capable instance is down: while the other is probed (and usable) again, the job is not sent there.
    const probed = bare.lastProbeAt;
    await pollUntil(
      () => bare.lastProbeAt,
      (t) => t > probed,
      { description: 'another probe round' },
    );
    expect(bare.usable).toBe(true);
    expect(placed).toBeUndefined();
    await sims[1].recover();
    await pollUntil(
      () => placed,
      (l) => l !== undefined,
      { timeoutMs: 10_000, description: 'placed after recovery' },
    );
    expect(placed!.instance).toBe(full);
    await waiting;
    await placed!.release();
  });

  it('re-reads /object_info after the instance restarted (its socket reopened)', async () => {
    const pool = await startPool([{}]);
    const instance = pool.all()[0];
    await pollUntil(
      () => instance.client.socketOpens,
      (n) => n >= 1,
      { description: 'socket open' },
    );
    const firstRead = instance.capabilities!.readAt;
    await sims[0].crash();
    await sims[0].recover();
    await pollUntil(
      () => instance.capabilities!.readAt,
      (readAt) => readAt > firstRead,
      { timeoutMs: 10_000, description: 'capabilities read again' },
    );
  });
});
