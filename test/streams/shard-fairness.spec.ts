import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniqueShardedPrefix } from '../support/test-redis';

const SHARDS = 2;
const BACKLOG = 8;

/**
 * STREAM_SHARDS: a shard's backlog never starves another. One gpu slot (one simulated instance, GPU_CONCURRENCY=1)
 * serves two shards; user A fills its shard with a backlog, then user B (another shard) submits one job. The slot is
 * offered to the shards in turn (ConcurrencyBudget), so B's job starts after at most one more of A's — not after A's
 * whole backlog — and the reported position of B's job is within the documented bound of where it starts.
 */
describe('shards share the workers fairly (STREAM_SHARDS=2, one gpu slot)', () => {
  const prefix = uniqueShardedPrefix('fair');
  const layout = StreamKeys.sharded(prefix, SHARDS);
  const shardOfUser = (user: string) => layout.forAccount(`user:api:anonymous:${user}`).shard;
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp(
      {
        STREAM_SHARDS: String(SHARDS),
        ROLE: 'api,gpu,projector',
        COMFYUI_SIM_INSTANCES: '1',
        COMFYUI_SIM_STEP_MS: '30',
        GPU_CONCURRENCY: '1',
        USER_MAX_ACTIVE: '50',
      },
      prefix,
    );
  });

  afterAll(async () => {
    await app?.stop();
  });

  const submit = async (user: string) => {
    const res = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'txt2img', inputs: { prompt: 'fair', width: 64, height: 64, steps: 10 } },
      headers: { 'x-user-id': user },
    });
    expect(res.status).toBe(202);
    return res.body as { id: string; position: number };
  };
  const view = async (id: string) => (await app.http(`/v1/generations/${id}`)).body as Record<string, string>;

  it("B's one job starts before A's backlog drains, after at most one job per shard", async () => {
    const a = 'alice';
    const b = ['bob', 'bea', 'ben', 'bill', 'bo', 'bud', 'bert', 'babs'].find(
      (u) => shardOfUser(u) !== shardOfUser(a),
    )!;
    const aJobs: string[] = [];
    for (let i = 0; i < BACKLOG; i++) aJobs.push((await submit(a)).id);
    // The job id names the account's shard.
    expect(aJobs.map((id) => layout.shardOfJob(id))).toEqual(aJobs.map(() => shardOfUser(a)));
    await pollUntil(
      () => view(aJobs[0]!),
      (v) => v.status !== 'queued',
      { timeoutMs: 30_000, intervalMs: 20, description: "A's first job taken" },
    );
    const submittedAt = Date.now();
    const bJob = await submit(b);
    expect(layout.shardOfJob(bJob.id)).toBe(shardOfUser(b));
    const all = [...aJobs, bJob.id];
    const views = await pollUntil(
      () => Promise.all(all.map(view)),
      (vs) => vs.every((v) => v.status === 'succeeded'),
      { timeoutMs: 60_000, intervalMs: 100, description: 'every job succeeded' },
    );
    const startedAt = (id: string) => Date.parse(views[all.indexOf(id)]!.startedAt!);
    // A's jobs that started after B's submit and before B's job: the slot goes to the shards in turn, so at most
    // one per other shard with work plus one read at the same moment (SHARDS), never A's backlog.
    const aBetween = aJobs.filter((id) => startedAt(id) >= submittedAt && startedAt(id) < startedAt(bJob.id));
    expect(aBetween.length).toBeLessThanOrEqual(SHARDS);
    expect(aJobs.filter((id) => startedAt(id) > startedAt(bJob.id)).length).toBeGreaterThanOrEqual(3);
    // Its reported position (1: next, nothing queued ahead in its shard) is within that bound of where it started.
    expect(bJob.position).toBe(1);
  });

  it('a job further back in its shard is reported within one job per shard of its place in the start order', async () => {
    const a = 'ann';
    const b = ['bob', 'bea', 'ben', 'bill', 'bo', 'bud', 'bert', 'babs'].find(
      (u) => shardOfUser(u) !== shardOfUser(a),
    )!;
    const aJobs: string[] = [];
    for (let i = 0; i < BACKLOG; i++) aJobs.push((await submit(a)).id);
    await pollUntil(
      () => view(aJobs[0]!),
      (v) => v.status !== 'queued',
      { timeoutMs: 30_000, intervalMs: 20, description: "A's first job taken" },
    );
    const bJobs: string[] = [];
    for (let i = 0; i < 4; i++) bJobs.push((await submit(b)).id);
    const submittedAt = Date.now();
    const last = await submit(b);
    const all = [...aJobs, ...bJobs, last.id];
    const views = await pollUntil(
      () => Promise.all(all.map(view)),
      (vs) => vs.every((v) => v.status === 'succeeded'),
      { timeoutMs: 90_000, intervalMs: 100, description: 'every job succeeded' },
    );
    const startedAt = (id: string) => Date.parse(views[all.indexOf(id)]!.startedAt!);
    // What really started ahead of it once it was submitted (the one job a worker held then may be among them).
    const startedAhead = all.filter(
      (id) => id !== last.id && startedAt(id) >= submittedAt && startedAt(id) < startedAt(last.id),
    );
    // Four of B's own are ahead in its shard; A's backlog takes turns with them, so about as many of A's start too.
    // The position counts both (rank + Σ min(queued in s, rank)): off by at most one per shard (docs/job-state.md).
    // Seen: exact (8 ahead, position 9); counting only its own shard would say 5.
    expect(Math.abs(startedAhead.length - (last.position - 1))).toBeLessThanOrEqual(SHARDS);
    expect(last.position).toBeGreaterThan(5);
  });
});
