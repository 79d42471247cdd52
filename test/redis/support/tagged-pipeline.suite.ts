import { startTestApp, type TestApp } from '../../support/app-harness';
import { FakeTelegram } from '../../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../../support/poll-until';
import { cleanupPrefix, keysMatching, uniquePrefix } from '../../support/test-redis';
import { ALL_ROLES, testPng, waitForPolling, waitForResults } from '../../bot/support/bot-harness';
import { cli } from '../../cli/cli-harness';
import { StreamKeys } from '../../../src/streams/stream-keys';

/**
 * The whole pipeline on a hash-tagged prefix — API jobs queued in the fair queue, cancels while queued and running,
 * images, Telegram prompts and photos delivered through the fake Bot API, and the operator CLI (stats, job,
 * projections rebuild, replay into a sandbox) — against whatever Redis `redisEnv` names: a one-node cluster (cluster-slots.spec.ts, where
 * Redis refuses any crossing of slots) or a 3-primary cluster through the cluster client (redis-cluster.spec.ts).
 */
export function describeTaggedPipeline(
  redisEnv: () => Record<string, string>,
  prefix: string,
  expectations: {
    redisHealth?: (details: Record<string, unknown>) => void;
    /** A prefix for the replay's sandbox (untagged with STREAM_SHARDS > 1, which tags each shard itself). */
    sandboxPrefix?: () => string;
  } = {},
): void {
  describe('the pipeline on a tagged prefix', () => {
    let fake: FakeTelegram;
    let app: TestApp;

    beforeAll(async () => {
      fake = new FakeTelegram();
      await fake.start();
      app = await startTestApp(
        {
          ...redisEnv(),
          ROLE: ALL_ROLES,
          TELEGRAM_BOT_TOKEN: fake.token,
          TELEGRAM_API_ROOT: fake.url,
          USER_MAX_ACTIVE: '10',
          COMFYUI_SIM_INSTANCES: '1',
          COMFYUI_SIM_STEP_MS: '40',
          GPU_CONCURRENCY: '1',
          // Few requests in the streams, so jobs wait as held requests of the fair queue and are dispatched later.
          QUEUE_DISPATCH_AHEAD: '1',
        },
        prefix,
      );
      await waitForPolling(fake);
    });

    afterAll(async () => {
      await app?.stop();
      await fake?.stop();
    });

    const submit = async (user: string, workflow = 'echo-invert', inputs: object = { width: 8, height: 8 }) => {
      const res = await app.http('/v1/generations', {
        method: 'POST',
        json: { workflow, inputs },
        headers: { 'x-user-id': user },
      });
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const statusOf = async (id: string) => (await app.http(`/v1/generations/${id}`)).body.status as string;
    const waitFor = (id: string, status: string) =>
      pollUntil(
        () => statusOf(id),
        (s) => s === status,
        { timeoutMs: 60_000, description: `${id} ${status}` },
      );

    it('API jobs queue, run, cancel (queued and running) and return their images', async () => {
      const running = await submit('u1', 'txt2img', { prompt: 'a slow lighthouse', steps: 20 });
      const queued = [await submit('u2'), await submit('u3'), await submit('u2'), await submit('u4')];
      await waitFor(running, 'running');
      const cancelQueued = await app.http(`/v1/generations/${queued[1]}/cancel`, { method: 'POST' });
      expect(cancelQueued.body.status).toBe('cancelled');
      await app.http(`/v1/generations/${running}/cancel`, { method: 'POST' });
      await waitFor(running, 'cancelled');
      for (const id of [queued[0]!, queued[2]!, queued[3]!]) {
        await waitFor(id, 'succeeded');
        const result = await app.http(`/v1/generations/${id}/result`);
        expect(result.status).toBe(200);
        expect(result.headers.get('content-type')).toBe('image/png');
      }
    });

    it('Telegram: a prompt and a photo with an instruction come back as pictures', async () => {
      const alice = fake.user(4242);
      fake.sendText(alice, 'a harbour at night');
      fake.sendPhoto(alice, { bytes: testPng(), caption: 'make it brighter' });
      const photos = await waitForResults(fake, alice.id, 2);
      expect(photos).toHaveLength(2);
    });

    it('the operator CLI reads and rebuilds it', async () => {
      const env = redisEnv();
      const stats = await cli(prefix, ['stats'], { env });
      expect(stats.code).toBe(0);
      const rebuild = await cli(prefix, ['projections', 'rebuild', '--json'], { env });
      expect(rebuild.code).toBe(0);
      expect(JSON.parse(rebuild.out)).toMatchObject({ differences: [] });
      const views = await keysMatching(app.redis, `${prefix}*jobs:view:*`);
      expect(views.length).toBeGreaterThanOrEqual(7);
      // With shards, a job outside shard 0 (whose keys the CLI starts from): its streams' groups must still be found.
      const home = StreamKeys.sharded(prefix, Number(env.STREAM_SHARDS ?? '1')).prefix;
      const view = views.find((k) => !k.startsWith(`${home}jobs:view:`)) ?? views[0]!;
      const id = view.slice(view.lastIndexOf(':') + 1);
      const job = await cli(prefix, ['job', id, '--json'], { env });
      expect(job.code).toBe(0);
      const report = JSON.parse(job.out) as { steps: { type: string; deliveries: { group: string }[] }[] };
      const requested = report.steps.find((s) => s.type === 'job.requested')!;
      expect(requested.deliveries.map((d) => d.group)).toEqual(expect.arrayContaining(['gpu', 'projector']));
    });

    it('/health reports Redis up', async () => {
      const health = await app.http('/health');
      const details = health.body.details as Record<string, Record<string, unknown>>;
      expect(details.redis).toMatchObject({ status: 'up' });
      expectations.redisHealth?.(details.redis!);
    });

    it('cli replay copies every entry into a sandbox prefix, whose projection rebuilds every job from them', async () => {
      const env = redisEnv();
      const sandbox = (expectations.sandboxPrefix ?? (() => uniquePrefix('sandbox')))();
      try {
        const run = await cli(prefix, ['replay', '--from', '0-0', '--into', sandbox, '--json'], { env });
        expect(run.code).toBe(0);
        const copied = JSON.parse(run.out) as { target: string; appended: number };
        expect(copied.target).toBe(sandbox);
        const jobs = await keysMatching(app.redis, `${prefix}*jobs:view:*`);
        expect(copied.appended).toBeGreaterThan(jobs.length);
        const rebuild = await cli(sandbox, ['projections', 'rebuild', '--json'], { env });
        expect(rebuild.code).toBe(0);
        expect(JSON.parse(rebuild.out)).toMatchObject({ jobs: jobs.length });
        expect(await keysMatching(app.redis, `${sandbox}*jobs:view:*`)).toHaveLength(jobs.length);
      } finally {
        await cleanupPrefix(app.redis, sandbox);
      }
    });
  });
}
