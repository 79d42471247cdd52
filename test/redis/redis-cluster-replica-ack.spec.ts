import { randomUUID } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { ReplicaAck } from '../../src/redis/replica-ack';
import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { TestRedisCluster } from '../support/redis-cluster';
import { uniqueShardedPrefix } from '../support/test-redis';

const SHARDS = 6;
const JOB = { workflow: 'echo-invert', inputs: { width: 8, height: 8 } };

/**
 * REDIS_MIN_REPLICAS_ACK=1 on a Redis Cluster (3 primaries, a replica each, STREAM_SHARDS=6): a submit is answered
 * 202 only once the replica of the primary that holds the job's shard has it. WAIT counts one primary's replicas, so
 * it must go to the primary the write went to: with only that primary's replica stopped, a submit to its shards is
 * refused (503) while the other primaries' shards accept — a WAIT sent to any other primary would have said yes.
 */
describe('acknowledged writes on a Redis Cluster (REDIS_MIN_REPLICAS_ACK=1)', () => {
  const cluster = new TestRedisCluster(3, 1);
  const prefix = uniqueShardedPrefix('acked');
  const layout = StreamKeys.sharded(prefix, SHARDS);
  let app: TestApp;
  /** shard → [its primary's port, that primary's replica's port] */
  let placement: Map<number, [number, number]>;

  beforeAll(async () => {
    await cluster.start();
    const node = cluster.node(cluster.ports[0]!);
    try {
      const ranges = (await node.call('CLUSTER', 'SLOTS')) as [number, number, [string, number], [string, number]][];
      placement = new Map();
      for (const k of layout.shards) {
        const slot = Number(await node.call('CLUSTER', 'KEYSLOT', k.events));
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
        placement.set(k.shard, [range[2][1], range[3][1]]);
      }
    } finally {
      node.disconnect();
    }
    app = await startTestApp(
      {
        REDIS_URL: 'redis://127.0.0.1:1',
        REDIS_CLUSTER_NODES: cluster.nodeList,
        STREAM_SHARDS: String(SHARDS),
        ROLE: 'api,gpu,projector',
        REDIS_MIN_REPLICAS_ACK: '1',
        REDIS_REPLICA_ACK_TIMEOUT_MS: '300',
        USER_MAX_ACTIVE: '100',
        COMFYUI_SIM_STEP_MS: '5',
      },
      prefix,
    );
  }, 90_000);

  afterAll(async () => {
    for (const [, replica] of placement?.values() ?? []) cluster.pause(replica, false);
    await app?.stop().catch(() => undefined);
    await cluster.stop();
  });

  const userOfShard = (shard: number, tag: string): string => {
    for (let i = 0; i < 1_000; i++) {
      if (layout.forAccount(`user:api:anonymous:${tag}${i}`).shard === shard) return `${tag}${i}`;
    }
    throw new Error(`no user for shard ${shard}`);
  };
  const submit = (user: string, key = randomUUID()) =>
    app.http('/v1/generations', {
      method: 'POST',
      json: JOB,
      headers: { 'x-user-id': user, 'Idempotency-Key': key },
    });

  it("answers 202 once the job's shard's replica holds it, and the jobs run (the gpu's placement is acknowledged too)", async () => {
    const ids: string[] = [];
    for (const shard of layout.shards.map((k) => k.shard)) {
      const res = await submit(userOfShard(shard, 'acked'));
      expect(res.status).toBe(202);
      const id = res.body.id as string;
      const [, replicaPort] = placement.get(layout.shardOfJob(id))!;
      const replica = cluster.node(replicaPort);
      try {
        // On the replica when the client hears 202 (WAIT on the primary that took the write), not some time later.
        await replica.call('READONLY'); // a replica answers reads of its slots only when asked to
        expect(await replica.exists(layout.view(id))).toBe(1);
      } finally {
        replica.disconnect();
      }
      ids.push(id);
    }
    for (const id of ids) {
      await pollUntil(
        async () => (await app.http(`/v1/generations/${id}`)).body.status as string,
        (status) => status === 'succeeded',
        { timeoutMs: 60_000, description: `${id} succeeded` },
      );
    }
  });

  it("with one primary's replica stopped, its shards answer 503 + Retry-After and the others 202; its retry is accepted after", async () => {
    const [primary, replica] = placement.get(0)!;
    const elsewhere = layout.shards.find((k) => placement.get(k.shard)![0] !== primary)!.shard;
    const key = randomUUID();
    cluster.pause(replica, true);
    let refused: Awaited<ReturnType<typeof submit>>;
    let other: Awaited<ReturnType<typeof submit>>;
    try {
      refused = await submit(userOfShard(0, 'paused'), key);
      other = await submit(userOfShard(elsewhere, 'awake'));
    } finally {
      cluster.pause(replica, false);
    }
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.body).toMatchObject({ details: { reason: 'replicas_unconfirmed', replicas: 1, confirmed: 0 } });
    expect(other.status).toBe(202);
    const retried = await pollUntil(
      () => submit(userOfShard(0, 'paused'), key),
      (r) => r.status !== 503,
      { timeoutMs: 10_000, intervalMs: 100, description: 'the retry confirmed' },
    );
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
  });

  it('a write the slot map sends to the wrong primary is refused there (MOVED), never confirmed by that node', async () => {
    const main = cluster.client();
    const acked = cluster.client();
    const acks = ReplicaAck.on(main, acked, 1, 300);
    try {
      const key = `${prefix}probe:${randomUUID()}`;
      await acked.get(key); // the client has its slot map
      const slot = calculateSlot(key);
      const right = acked.slots[slot]![0]!;
      const wrong = acked.slots.find((owners) => owners?.[0] && owners[0] !== right)![0]!;
      acked.slots[slot] = [wrong]; // a map that has not heard of a resharding yet
      await expect(acks.write((r) => r.set(key, '1'), { key })).rejects.toMatchObject({
        name: 'ReplicasUnconfirmedError',
        reason: 'reconnected',
      });
      expect(await main.exists(key)).toBe(0);
      // The map is learnt again: the retry goes to the primary that holds the slot, and its replica confirms it.
      await pollUntil(
        () => Promise.resolve(acked.slots[slot]![0]),
        (owner) => owner === right,
        { timeoutMs: 10_000, intervalMs: 50, description: 'slot map refreshed' },
      );
      await expect(acks.write((r) => r.set(key, '1'), { key })).resolves.toBe('OK');
      await main.del(key);
    } finally {
      await acks.close();
      main.disconnect();
    }
  });
});
