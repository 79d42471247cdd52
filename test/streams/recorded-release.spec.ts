import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { parseDlqEntry } from '../../src/streams/dead-letter.writer';
import { decodeEntry } from '../../src/streams/envelope.codec';
import { StreamKeys } from '../../src/streams/stream-keys';
import { requestOf } from '../../src/modules/operations/dlq.service';
import { cli } from '../cli/cli-harness';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

interface Recording {
  release: string;
  jobs: Record<'succeeded' | 'withImage' | 'failed' | 'deadLettered' | 'cancelled', string>;
  views: Record<string, { status: string; workflow: string; error?: { code: string } }>;
  streams: Record<string, [string, string[]][]>;
}

/**
 * Streams written by release 55a6019 — before the event schemas, when job.requested was v1 with its ticket inside
 * the payload — recorded by scripts/record-stream-fixture.ts from five real jobs on the ComfyUI simulator. They must
 * keep decoding, rebuild the same views, and show in `cli job`: nobody rewrites a stream on upgrade.
 */
const recording = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/release-55a6019-streams.json'), 'utf8'),
) as Recording;

describe(`streams recorded by release ${recording.release.slice(0, 7)} after the schema change`, () => {
  let redis: Redis;
  const prefix = uniquePrefix('recorded');
  const keys = new StreamKeys(prefix);

  beforeAll(async () => {
    redis = testRedis();
    for (const [stream, entries] of Object.entries(recording.streams)) {
      for (const [id, fields] of entries) await redis.xadd(`${prefix}${stream}`, id, ...fields);
    }
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const jobStreams = ['jobs:requests', 'jobs:requests:priority', 'jobs:events'];

  it('every entry decodes; requests are upcast from v1 with the ticket they were given', () => {
    const entries = jobStreams.flatMap((stream) => recording.streams[stream] ?? []);
    expect(entries.length).toBeGreaterThan(20);
    const tickets: number[] = [];
    for (const [id, fields] of entries) {
      const decoded = decodeEntry(fields);
      if (!decoded.ok) throw new Error(`entry ${id} does not decode: ${decoded.reason}`);
      if (decoded.envelope.type !== 'job.requested') continue;
      expect(JSON.parse(fields[fields.indexOf('e') + 1]!)).toMatchObject({ v: 1 });
      expect(decoded.envelope.v).toBe(2);
      expect(decoded.envelope.payload).not.toHaveProperty('ticket');
      tickets.push(decoded.envelope.ticket!);
    }
    expect(tickets).toEqual([1, 2, 3, 4, 5]);
  });

  it('the dead letter still holds a request a re-drive can read', () => {
    const [[id, fields]] = recording.streams['jobs:dlq']!;
    const request = requestOf(parseDlqEntry(id, fields));
    expect(request).toMatchObject({ jobId: recording.jobs.deadLettered, v: 2, ticket: 4 });
  });

  it('projections rebuild makes the views the release made, tickets included', async () => {
    const rebuild = await cli(prefix, ['projections', 'rebuild', '--json']);
    expect(rebuild.err).toBe('');
    expect(rebuild.code).toBe(0);
    expect(JSON.parse(rebuild.out).written).toHaveLength(Object.keys(recording.jobs).length);
    const order = ['succeeded', 'withImage', 'failed', 'deadLettered', 'cancelled'] as const;
    for (const [index, name] of order.entries()) {
      const view = await redis.hgetall(keys.view(recording.jobs[name]));
      expect({ name, status: view.status, workflow: view.workflow, ticket: view.ticket }).toEqual({
        name,
        status: recording.views[name]!.status,
        workflow: recording.views[name]!.workflow,
        ticket: String(index + 1),
      });
      if (recording.views[name]!.error) expect(view.error).toContain(recording.views[name]!.error!.code);
    }
    const again = JSON.parse((await cli(prefix, ['projections', 'rebuild', '--json'])).out);
    expect(again).toMatchObject({ differences: [], written: [] });
  });

  it('cli job shows each recorded job: status, ticket, timeline and why it failed', async () => {
    const job = async (name: keyof Recording['jobs']) => {
      const run = await cli(prefix, ['job', recording.jobs[name]]);
      expect(run.err).toBe('');
      expect(run.code).toBe(0);
      return run.out;
    };
    const succeeded = await job('succeeded');
    expect(succeeded).toContain(`job ${recording.jobs.succeeded}  status succeeded`);
    expect(succeeded).toMatch(/ticket 1 /);
    expect(succeeded).toMatch(/job\.requested .*ticket=1/);
    expect(succeeded).toMatch(/job\.completed/);

    expect(await job('failed')).toContain('WHY IT FAILED: comfyui_execution_error');
    const dead = await job('deadLettered');
    expect(dead).toContain('WHY IT FAILED: comfyui_out_of_memory');
    expect(dead).toMatch(/Dead letters \(1\)/);
    const cancelled = await job('cancelled');
    expect(cancelled).toContain('status cancelled');
    expect(cancelled).toMatch(/job\.cancel-requested/);
    expect(cancelled).toMatch(/ticket 5 /);

    const report = JSON.parse((await cli(prefix, ['job', recording.jobs.withImage, '--json'])).out);
    expect(report.steps.map((s: { type: string }) => s.type)).toEqual([
      'job.requested',
      'job.accepted',
      'job.started',
      'job.completed',
    ]);
    expect(report.steps[0].envelope).toMatchObject({ v: 2, ticket: 2 });
    expect(report.steps[0].envelope.payload.inputs.image.blob).toMatchObject({ type: 'image/png' });
  });
});
