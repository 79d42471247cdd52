import { createHash } from 'node:crypto';
import type { StreamConsumer } from '../../src/streams/stream-consumer';
import { StreamKeys } from '../../src/streams/stream-keys';
import { completeJob, startFakeGpu } from '../cli/cli-harness';
import { startTestApp, type TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';
import { uniquePrefix } from '../support/test-redis';

const PRIORITY_KEY = 'tier-priority-key-0123456789abcdef';
const NORMAL_KEY = 'tier-normal-key-0123456789abcdefg';
const CAPPED_KEY = 'tier-capped-key-0123456789abcdefgh';
const RACED_KEY = 'tier-raced-key-0123456789abcdefghi';
const KEYS = [PRIORITY_KEY, NORMAL_KEY, CAPPED_KEY, RACED_KEY];
const CAP = 2;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const fingerprint = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 12);

/**
 * Tiers and quotas per API key (issue 14 item 3): `priority: true` only for API_PRIORITY_KEYS (else 403 naming
 * `priority`), and API_KEY_MAX_ACTIVE active jobs per key over all its X-User-Ids (429 with Retry-After; the slot
 * comes back when a job ends). API and projector roles, jobs finished by a stand-in gpu worker when the test says.
 */
describe('API keys: priority tier and per-key active cap (real Redis, real HTTP)', () => {
  const prefix = uniquePrefix('tiers');
  const keys = new StreamKeys(prefix);
  let app: TestApp;
  let gpu: StreamConsumer | undefined;

  beforeAll(async () => {
    app = await startTestApp(
      {
        ROLE: 'api,projector',
        API_KEYS: KEYS.join(','),
        API_PRIORITY_KEYS: PRIORITY_KEY,
        API_KEY_MAX_ACTIVE: String(CAP),
        USER_MAX_ACTIVE: '50',
      },
      prefix,
    );
  });

  afterAll(async () => {
    await gpu?.close(500);
    await app.stop();
  });

  const submit = (key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    app.http('/v1/generations', {
      method: 'POST',
      json: { workflow: 'echo-invert', inputs: { width: 8, height: 8 }, ...body },
      headers: { ...bearer(key), ...headers },
    });
  const requests = async (stream: string) =>
    (await app.redis.xrange(stream, '-', '+')).map(([, fields]) => JSON.parse(fields[1]!));
  const keyActive = (key: string) => `${prefix}apikey:${fingerprint(key)}:active`;

  it('priority: true from a key outside API_PRIORITY_KEYS → 403 naming priority, nothing queued', async () => {
    const queuedBefore = await app.redis.zcard(keys.queue);
    const res = await submit(NORMAL_KEY, { priority: true }, { 'X-User-Id': 'alice' });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      statusCode: 403,
      error: 'priority_not_allowed',
      message: expect.stringMatching(/^priority: /),
      field: 'priority',
      fields: [{ field: 'priority', message: expect.stringContaining('API_PRIORITY_KEYS') }],
    });
    expect(await app.redis.zcard(keys.queue)).toBe(queuedBefore);
    expect(await app.redis.xlen(keys.requestsPriority)).toBe(0);
    // The same key without the flag (or with priority: false) is served as usual.
    expect((await submit(NORMAL_KEY, { priority: false }, { 'X-User-Id': 'alice' })).status).toBe(202);
  });

  it('priority: true from a key in API_PRIORITY_KEYS → 202, queued in the priority tier', async () => {
    const res = await submit(PRIORITY_KEY, { priority: true });
    expect(res.status).toBe(202);
    const [request] = await requests(keys.requestsPriority);
    expect(request).toMatchObject({ jobId: res.body.id, payload: { priority: true } });
    expect(res.body.position).toEqual(expect.any(Number));
    await app.http(`/v1/generations/${res.body.id}/cancel`, { method: 'POST', headers: bearer(PRIORITY_KEY) });
  });

  it('API_KEY_MAX_ACTIVE: a key at its cap gets 429 + Retry-After whatever X-User-Id; other keys are not held', async () => {
    const first = await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u1', 'Idempotency-Key': 'capped-first' });
    const second = await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u2' });
    expect([first.status, second.status]).toEqual([202, 202]);

    const refused = await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u3' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.body).toMatchObject({
      statusCode: 429,
      error: 'too_many_active_jobs',
      details: { active: CAP, limit: CAP, scope: 'api_key' },
    });
    expect(refused.body.message).toMatch(/API key already has 2 active job\(s\); its limit is 2/);
    // A repeated request still finds its job at the cap (idempotency is answered before any limit).
    const replay = await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u1', 'Idempotency-Key': 'capped-first' });
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id: first.body.id, duplicate: true });
    // Another key is not affected by this one's cap.
    expect((await submit(NORMAL_KEY, {}, { 'X-User-Id': 'u3' })).status).toBe(202);
    // Nothing of the refused request stayed behind: the key's set holds exactly its two jobs.
    expect((await app.redis.zrange(keyActive(CAPPED_KEY), 0, -1)).sort()).toEqual(
      [first.body.id, second.body.id].sort(),
    );

    // A job cancelled while queued has ended: its slot is free again.
    const cancel = await app.http(`/v1/generations/${first.body.id}/cancel`, {
      method: 'POST',
      headers: bearer(CAPPED_KEY),
    });
    expect(cancel.body.status).toBe('cancelled');
    await pollUntil(
      () => app.http(`/v1/generations/${first.body.id}`, { headers: bearer(CAPPED_KEY) }),
      (r) => r.body.status === 'cancelled',
      { description: 'cancel projected' },
    );
    const third = await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u3' });
    expect(third.status).toBe(202);
    expect((await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u4' })).status).toBe(429);

    // Jobs that run to the end free their slots too.
    gpu = await startFakeGpu(app.redis, prefix, completeJob);
    for (const id of [second.body.id, third.body.id]) {
      await pollUntil(
        () => app.http(`/v1/generations/${id}`, { headers: bearer(CAPPED_KEY) }),
        (r) => r.body.status === 'succeeded',
        { description: `job ${id} succeeded`, timeoutMs: 15_000 },
      );
    }
    // Released by the jobs' ends themselves (the projector's, here), not only healed at the cap.
    await pollUntil(
      () => app.redis.zrange(keyActive(CAPPED_KEY), 0, -1),
      (members) => members.length === 0,
      { description: 'ended jobs left the key set' },
    );
    await gpu.close(500);
    gpu = undefined;
    const again = await Promise.all([submit(CAPPED_KEY, {}, { 'X-User-Id': 'u5' }), submit(CAPPED_KEY)]);
    expect(again.map((r) => r.status)).toEqual([202, 202]);
    expect((await submit(CAPPED_KEY, {}, { 'X-User-Id': 'u6' })).status).toBe(429);
  });

  it('concurrent submits of one key never exceed the cap', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => submit(RACED_KEY, {}, { 'X-User-Id': `racer-${i}` })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 202, 429, 429, 429, 429, 429, 429]);
    expect(await app.redis.zcard(keyActive(RACED_KEY))).toBe(CAP);
  });

  it("at the cap, the key's set drops ended jobs and lapsed reservations it still holds (and keeps fresh ones)", async () => {
    const set = keyActive(RACED_KEY);
    const live = (await app.redis.zrange(set, 0, -1)).sort();
    expect(live).toHaveLength(CAP);
    // Left behind by paths that did not release them: a job that ended (e.g. its view rebuilt without the set's
    // name), a reservation whose process died a while ago — and one being made right now, which must count.
    await app.redis.hset(keys.view('ended-elsewhere'), 'id', 'ended-elsewhere', 'status', 'succeeded');
    await app.redis.zadd(set, Date.now() - 5_000, 'ended-elsewhere');
    await app.redis.zadd(set, Date.now() - 120_000, 'lapsed-reservation');
    await app.redis.zadd(set, Date.now(), 'fresh-reservation');

    expect((await submit(RACED_KEY, {}, { 'X-User-Id': 'late' })).status).toBe(429);
    expect((await app.redis.zrange(set, 0, -1)).sort()).toEqual([...live, 'fresh-reservation'].sort());

    await app.redis.zrem(set, 'fresh-reservation', live[0]!);
    expect((await submit(RACED_KEY, {}, { 'X-User-Id': 'late' })).status).toBe(202);
    await app.redis.del(keys.view('ended-elsewhere'));
  });

  it('keys are never stored: only their fingerprints name the per-key sets and scope the jobs', async () => {
    const names: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await app.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      names.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    expect(names).toContain(keyActive(CAPPED_KEY));
    for (const key of KEYS) expect(names.some((n) => n.includes(key))).toBe(false);
    const [anyJob] = await app.redis.zrange(keyActive(RACED_KEY), 0, 0);
    const view = await app.redis.hgetall(keys.view(anyJob!));
    expect(view.keyActiveSet).toBe(keyActive(RACED_KEY));
    expect(JSON.stringify(view)).not.toContain(RACED_KEY);
  });
});
