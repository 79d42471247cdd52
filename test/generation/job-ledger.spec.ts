import { StreamKeys } from '../../src/streams/stream-keys';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

/**
 * The ledger applies a job's events to its view as they are appended: with no projector running at all, a job's
 * state still goes queued → succeeded, its timeline, queue entry, the user's active slot and the run statistics
 * are all kept — the projector has nothing left to do for these entries.
 */
describe('job ledger: state applied as events are appended (no projector role)', () => {
  let app: TestApp;
  let keys: StreamKeys;

  beforeAll(async () => {
    app = await startTestApp({ ROLE: 'api,gpu', USER_MAX_ACTIVE: '1' });
    keys = new StreamKeys(app.prefix);
  });

  afterAll(async () => {
    await app.stop();
  });

  it('submit writes the view at once; the worker’s events move it to succeeded and free the user’s slot', async () => {
    const created = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
      headers: { 'x-user-id': 'dora' },
    });
    expect(created.status).toBe(202);
    const id: string = created.body.id;
    // Nothing queued ahead: dispatched by the submit itself, its request never held in the fair queue.
    expect(await app.redis.exists(keys.queuedRequest(id))).toBe(0);
    expect(await app.redis.zscore(keys.queuePending, id)).toBeNull();
    expect((await app.redis.hget(keys.view(id), 'requestEntryId')) ?? '').toMatch(/^\d+-\d+$/);
    const done = await pollUntil(
      () => app.http(`/v1/generations/${id}`),
      (r) => r.body.status === 'succeeded',
      { description: 'succeeded without a projector' },
    );
    expect(done.body.result).toHaveLength(1);
    const view = await app.redis.hgetall(keys.view(id));
    expect(view).toMatchObject({ status: 'succeeded', workflow: 'echo-invert', userId: 'api:anonymous:dora' });
    expect(Number(view.ticket)).toBeGreaterThan(0);
    const timeline = await app.redis.zrange(keys.timeline(id), 0, -1);
    expect(timeline.map((m) => m.split('|')[0])).toEqual([
      'jobs:requests',
      'jobs:events',
      'jobs:events',
      'jobs:events',
    ]);
    expect(await app.redis.zscore(keys.queue, id)).toBeNull();
    expect(await app.redis.smembers(keys.userActive('api:anonymous:dora'))).toEqual([]);
    expect(Number(await app.redis.hget(keys.runStats, 'completed'))).toBe(1);
    expect(await app.redis.ttl(keys.view(id))).toBeGreaterThan(0);
    expect(await app.redis.ttl(keys.timeline(id))).toBeGreaterThan(0);
    // The worker's run ended with the job, in the same step: no run lease, no placement left.
    expect(await app.redis.exists(keys.runLease(id), keys.placement(id))).toBe(0);
    // Every entry of the job says it was applied as it was appended.
    const entries = [
      ...(await app.redis.xrange(keys.requests, '-', '+')),
      ...(await app.redis.xrange(keys.events, '-', '+')),
    ];
    expect(entries.every(([, fields]) => fields.includes('projected'))).toBe(true);
    // The slot is free: the same user (limit 1) may submit again.
    const again = await app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
      headers: { 'x-user-id': 'dora' },
    });
    expect(again.status).toBe(202);
  });

  it('a job counted against its API key leaves the key’s active set when the worker completes it', async () => {
    const keyed = await startTestApp({
      ROLE: 'api,gpu',
      API_KEYS: 'ledger-test-key-0123456789',
      API_KEY_MAX_ACTIVE: '1',
    });
    try {
      const headers = { authorization: 'Bearer ledger-test-key-0123456789' };
      const submit = () =>
        keyed.http('/v1/generations', {
          method: 'POST',
          json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 } },
          headers,
        });
      const created = await submit();
      expect(created.status).toBe(202);
      const set = (await keyed.redis.hgetall(new StreamKeys(keyed.prefix).view(created.body.id))).keyActiveSet!;
      expect(await keyed.redis.zscore(set, created.body.id)).not.toBeNull();
      await pollUntil(
        () => keyed.http(`/v1/generations/${created.body.id}`, { headers }),
        (r) => r.body.status === 'succeeded',
        { description: 'keyed job succeeded' },
      );
      expect(await keyed.redis.zcard(set)).toBe(0);
      expect((await submit()).status).toBe(202);
    } finally {
      await keyed.stop();
    }
  });
});
