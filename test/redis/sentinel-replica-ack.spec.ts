import { randomUUID } from 'node:crypto';
import { texts } from '../../src/modules/bot/i18n';
import { startBotApp, waitForPolling, waitForReply } from '../bot/support/bot-harness';
import { startTestApp, type TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { pollUntil } from '../support/poll-until';
import { TestSentinelSet } from '../support/sentinel-set';

const JOB = { workflow: 'txt2img', inputs: { prompt: 'kept', width: 64, height: 64, steps: 2 } };

/**
 * REDIS_MIN_REPLICAS_ACK=1 on a Sentinel set: a submit is answered 202 only once a replica holds it. With every
 * replica stopped (SIGSTOP: they acknowledge nothing) it is 503 with Retry-After and the API's error body.
 */
describe('acknowledged submits on a Sentinel set', () => {
  let set: TestSentinelSet;
  let app: TestApp;
  const sentinelEnv = () => ({
    // Only credentials, TLS and database come from REDIS_URL with Sentinel; the harness' own client uses its host.
    REDIS_URL: `redis://127.0.0.1:${set.primaryPort}`,
    REDIS_SENTINELS: set.sentinels,
    REDIS_SENTINEL_MASTER: set.masterName,
    REDIS_MIN_REPLICAS_ACK: '1',
    REDIS_REPLICA_ACK_TIMEOUT_MS: '300',
    USER_MAX_ACTIVE: '100',
  });

  beforeAll(async () => {
    set = await new TestSentinelSet().start();
    app = await startTestApp({ ROLE: 'api', ...sentinelEnv() });
  }, 60_000);

  afterAll(async () => {
    set?.pauseReplicas(false);
    await app?.stop().catch(() => undefined);
    await set?.stop();
  });

  const submit = (key = randomUUID()) =>
    app.http('/v1/generations', { method: 'POST', json: JOB, headers: { 'Idempotency-Key': key } });

  it('reaches the primary through the sentinels and says so in /health', async () => {
    const health = await app.http('/health');
    expect(health.body.details.redis).toMatchObject({
      status: 'up',
      primary: `127.0.0.1:${set.primaryPort}`,
      via: `sentinel:${set.masterName}`,
      role: 'master',
      replicas: 2,
      replicasRequired: 1,
    });
  });

  it('answers 202 once a replica holds the job, 503 + Retry-After while none confirms, 202 again after', async () => {
    const accepted = await submit();
    expect(accepted.status).toBe(202);
    const replica = set.client(set.replicaPorts[0]!);
    try {
      // The job is on the replica by the time the client hears 202 (WAIT), not some time later.
      expect(await replica.exists(`${app.prefix}jobs:view:${accepted.body.id}`)).toBe(1);
    } finally {
      replica.disconnect();
    }

    set.pauseReplicas(true);
    const key = randomUUID();
    const refused = await submit(key);
    set.pauseReplicas(false);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.body).toMatchObject({
      statusCode: 503,
      error: 'unavailable',
      details: { reason: 'replicas_unconfirmed', replicas: 1, confirmed: 0 },
    });

    // The refused request was kept on the primary: its retry (same key) finds it and is answered once confirmed.
    const retried = await pollUntil(
      () => submit(key),
      (r) => r.status !== 503,
      { timeoutMs: 10_000, intervalMs: 100, description: 'the retry confirmed' },
    );
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect((await submit()).status).toBe(202);
  });

  it('the bot tells the user it could not take the picture now while no replica confirms', async () => {
    const fake = new FakeTelegram();
    await fake.start();
    const bot = await startBotApp(fake, { ROLE: 'api,bot', ...sentinelEnv() });
    try {
      await waitForPolling(fake);
      const user = fake.user(5101);
      set.pauseReplicas(true);
      const sent = fake.sendText(user, 'a picture while the replicas sleep');
      const reply = await waitForReply(fake, user.id, sent.messageId, 'the refusal').finally(() =>
        set.pauseReplicas(false),
      );
      expect(reply.text).toBe(texts('en').notAcceptedNow);
    } finally {
      set.pauseReplicas(false);
      await bot.stop();
      await fake.stop();
    }
  });
});
