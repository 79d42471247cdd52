import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import { StreamKeys } from '../../src/streams/stream-keys';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';
import { cli, completeJob, startCli, startFakeGpu } from './cli-harness';

const ROOT = join(__dirname, '..', '..');

describe('cli: usage, tail, stats, projections (real Redis)', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  const fresh = (label: string) => {
    const prefix = uniquePrefix(label);
    prefixes.push(prefix);
    return prefix;
  };

  beforeAll(() => {
    redis = testRedis();
  });

  afterAll(async () => {
    for (const prefix of prefixes) await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it.each([
    [[]],
    [['bogus']],
    [['job']],
    [['job', 'a', 'b']],
    [['stats', '--wat']],
    [['tail', '--stream', 'nope']],
    [['tail', '--count', '0']],
    [['tail', '--type', 'job.nope']],
    [['dlq']],
    [['dlq', 'list', '--limit', 'many']],
    [['projections']],
    [['replay', '--to', '2024-01-01T00:00:00Z']],
  ])('bad arguments %j: usage on stderr, exit 2', async (argv) => {
    const run = await cli(fresh('usage'), argv);
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/error: |Usage: /);
    expect(run.err).toContain('Usage: cli');
    expect(run.out).toBe('');
  });

  it('--help prints usage on stdout and exits 0', async () => {
    const run = await cli(fresh('help'), ['--help']);
    expect(run.code).toBe(0);
    expect(run.out).toContain('Usage: cli [options] [command]');
    for (const verb of ['job', 'tail', 'stats', 'dlq', 'replay', 'projections']) expect(run.out).toContain(verb);
  });

  it('a bad environment exits 78 naming the variable', async () => {
    const run = await cli(fresh('env'), ['stats'], { env: { REDIS_URL: 'http://nope' } });
    expect(run.code).toBe(78);
    expect(run.err).toContain('REDIS_URL');
  });

  it('tail follows a stream live, filtered by type, bounded by --count / --timeout-ms', async () => {
    const prefix = fresh('tail');
    const publisher = new StreamPublisher(redis, new StreamKeys(prefix));
    const tail = cli(prefix, ['tail', '--stream', 'events', '--type', 'job.cancelled', '--count', '2', '--json']);
    let done = false;
    void tail.then(() => (done = true));
    // The tail starts at the stream's end: keep appending until it has seen two matching events.
    for (let i = 0; !done && i < 200; i++) {
      await publisher.publish('job.cancel-requested', { jobId: `j${i}`, actor: 'op' }, { by: 'op' });
      await publisher.publish('job.cancelled', { jobId: `j${i}`, actor: 'op' }, { by: 'op', whileQueued: true });
      await new Promise((r) => setTimeout(r, 25));
    }
    const run = await tail;
    expect(run.code).toBe(0);
    const lines = run.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatchObject({ stream: 'jobs:events', type: 'job.cancelled' });

    const started = Date.now();
    const idle = await cli(prefix, ['tail', '--stream', 'dlq', '--timeout-ms', '300']);
    expect(idle.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(idle.err).toContain(`following ${prefix}jobs:dlq`);
  });

  it('tail stops on Ctrl-C (abort signal) and shows dead letters as they arrive', async () => {
    const prefix = fresh('tail-dlq');
    const keys = new StreamKeys(prefix);
    const interrupt = new AbortController();
    const tail = startCli(prefix, ['tail', '--stream', 'dlq'], { signal: interrupt.signal });
    const envelope = makeEnvelope(
      'job.requested',
      { jobId: 'job-x', actor: 'api' },
      { workflow: 'txt2img', inputs: {}, userId: 'u', source: 'api' },
    );
    const dlqEntry = ['group', 'gpu', 'reason', 'boom', 'jobId', 'job-x', 'type', 'job.requested'];
    await pollUntil(
      async () => {
        await redis.xadd(keys.dlq, '*', ...dlqEntry, ENVELOPE_FIELD, encodeEnvelope(envelope));
        return tail.out();
      },
      (out) => out.includes('job-x'),
      { timeoutMs: 10_000, intervalMs: 50, description: 'tail printed a dead letter' },
    );
    interrupt.abort();
    const run = await tail.result;
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/jobs:dlq .* job\.requested +job=job-x +group=gpu .*reason=boom/);
  });

  it('job works without the projector: the timeline comes from a scan of the streams', async () => {
    const prefix = fresh('scan');
    const publisher = new StreamPublisher(redis, new StreamKeys(prefix));
    const meta = { jobId: 'job-scan', actor: 'gpu-1' };
    await publisher.publish(
      'job.requested',
      { ...meta, actor: 'api:x' },
      { workflow: 'txt2img', inputs: {}, userId: 'u', source: 'api' },
    );
    for (let i = 0; i < 50; i++) {
      await publisher.publish('job.cancelled', { jobId: `other-${i}`, actor: 'x' }, { by: 'x', whileQueued: true });
    }
    await publisher.publish('job.accepted', meta, { worker: 'gpu-1', instance: 'c1', promptId: 'p', attempt: 1 });
    await publisher.publish('job.failed', meta, {
      code: 'oom',
      message: 'CUDA out of memory',
      retriable: false,
      willRetry: false,
      attempt: 1,
    });
    const run = await cli(prefix, ['job', 'job-scan']);
    expect(run.code).toBe(0);
    expect(run.out).toContain('Timeline: 3 event(s), from a scan of the streams');
    expect(run.out).toContain('WHY IT FAILED: oom — CUDA out of memory (attempt 1, not retriable)');
    expect(run.out).not.toContain('other-');
  });

  it('stats shows lengths, groups, pending, consumers, DLQ size and GPU workers', async () => {
    const prefix = fresh('stats');
    const keys = new StreamKeys(prefix);
    const publisher = new StreamPublisher(redis, keys);
    await publisher.publish(
      'job.requested',
      { jobId: 'j1', actor: 'api' },
      { workflow: 'txt2img', inputs: {}, userId: 'u', source: 'api' },
    );
    await redis.xgroup('CREATE', keys.requests, 'gpu', '0', 'MKSTREAM');
    await redis.xreadgroup('GROUP', 'gpu', 'gpu-host-1', 'COUNT', 1, 'STREAMS', keys.requests, '>');
    await redis.xadd(keys.dlq, '*', 'reason', 'x');
    await redis.hset(keys.gpuWorkers, 'host-a:1', JSON.stringify({ slots: 2, expiresAt: Date.now() + 60_000 }));
    await redis.hset(keys.gpuWorkers, 'host-b:1', JSON.stringify({ slots: 2, expiresAt: Date.now() - 60_000 }));

    const json = JSON.parse((await cli(prefix, ['stats', '--json'])).out);
    const requests = json.streams.find((s: { name: string }) => s.name === 'jobs:requests');
    expect(requests.length).toBe(1);
    expect(requests.groups[0]).toMatchObject({ group: 'gpu', pending: 1, lag: 0, consumers: 1 });
    expect(requests.groups[0].oldestPending).toMatchObject({ consumer: 'gpu-host-1', deliveries: 1 });
    expect(requests.groups[0].consumerList[0]).toMatchObject({ name: 'gpu-host-1', pending: 1 });
    expect(json.dlqSize).toBe(1);
    expect(json.gpuWorkers.map((w: { worker: string; live: boolean }) => [w.worker, w.live])).toEqual([
      ['host-a:1', true],
      ['host-b:1', false],
    ]);

    const text = await cli(prefix, ['stats']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/jobs:requests +1 /);
    expect(text.out).toMatch(/jobs:requests +gpu +1 +0 +1 +\S+ age/);
    expect(text.out).toMatch(/gpu-host-1 +1/);
    expect(text.out).toContain('DLQ: 1 entry');
    expect(text.out).toContain('GPU workers: 1 live (2 slots), 1 expired');
  });

  it('stats shows the fair queue accounts with the deepest backlogs and where their next job stands', async () => {
    const prefix = fresh('backlogs');
    const app: TestApp = await startTestApp({ ROLE: 'api', USER_MAX_ACTIVE: '10' }, prefix);
    try {
      const submit = (user: string) =>
        app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
          headers: { 'x-user-id': user },
        });
      for (const [user, n] of [
        ['light', 1],
        ['heavy', 5],
        ['middle', 2],
      ] as const) {
        for (let i = 0; i < n; i++) expect((await submit(user)).status).toBe(202);
      }
      const json = JSON.parse((await cli(prefix, ['stats', '--json'])).out);
      expect(json.backlogs).toEqual([
        { account: 'user:api:anonymous:heavy', queued: 5, nextPosition: 2 },
        { account: 'user:api:anonymous:middle', queued: 2, nextPosition: 3 },
        { account: 'user:api:anonymous:light', queued: 1, nextPosition: 1 },
      ]);
      const text = await cli(prefix, ['stats']);
      expect(text.out).toContain('Deepest backlogs (fair queue accounts):');
      expect(text.out).toMatch(/user:api:anonymous:heavy +5 +#2/);
    } finally {
      await app.stop();
    }
  });

  it('projections rebuild reports differences, fixes them, and then finds none', async () => {
    const prefix = fresh('rebuild');
    const app: TestApp = await startTestApp({ ROLE: 'api,projector' }, prefix);
    const gpu = await startFakeGpu(app.redis, prefix, completeJob);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await app.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: {} },
        });
        ids.push(res.body.id);
      }
      for (const id of ids) {
        await pollUntil(
          () => app.http(`/v1/generations/${id}`),
          (r) => r.body.status === 'succeeded',
        );
      }
      const keys = new StreamKeys(prefix);
      await redis.hset(keys.view(ids[0]!), 'status', 'running');
      await redis.del(keys.view(ids[1]!));

      const dry = await cli(prefix, ['projections', 'rebuild', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.out).toContain('2 view(s) differ');
      expect(dry.out).toMatch(new RegExp(`${ids[0]} +status +running +succeeded`));
      expect(dry.out).toMatch(new RegExp(`${ids[1]} +\\* +\\(missing\\) +succeeded`));
      expect(dry.out).toContain('dry run: nothing written');
      expect(await redis.hget(keys.view(ids[0]!), 'status')).toBe('running');

      const fix = await cli(prefix, ['projections', 'rebuild']);
      expect(fix.code).toBe(0);
      expect(fix.out).toContain('wrote 2 view(s)');
      expect((await app.http(`/v1/generations/${ids[0]}`)).body.status).toBe('succeeded');
      expect((await app.http(`/v1/generations/${ids[1]}`)).body.status).toBe('succeeded');
      expect(JSON.parse((await cli(prefix, ['projections', 'rebuild', '--json'])).out)).toMatchObject({
        differences: [],
        written: [],
      });
    } finally {
      await gpu.close(500);
      await app.stop();
    }
  });

  it('as a child process: exit codes and output streams (npm run cli)', () => {
    const env = { ...process.env, REDIS_URL: TEST_REDIS_URL, STREAM_PREFIX: fresh('child') };
    const run = (args: string[]) =>
      spawnSync(
        process.execPath,
        [require.resolve('ts-node/dist/bin'), '--transpile-only', 'src/cli/main.ts', ...args],
        {
          cwd: ROOT,
          env,
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
    const usage = run(['job']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("error: missing required argument 'id'");
    expect(usage.stderr).toContain('Usage: cli job [options] <id>');
    const stats = run(['stats', '--json']);
    expect(stats.stderr).toBe('');
    expect(stats.status).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ prefix: env.STREAM_PREFIX, dlqSize: 0 });
  });
});
