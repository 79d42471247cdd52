import Redis from 'ioredis';
import { ReplicaAck, ReplicasUnconfirmedError } from '../../src/redis/replica-ack';
import type { RedisClient } from '../../src/redis/redis-client';
import { TestRedisServer } from '../support/redis-server';

/**
 * The acknowledged write on a primary with no replica: WAIT can never be satisfied, so every confirmation fails —
 * by timeout, or because the connection was re-established between the write and WAIT's answer (a WAIT on a fresh
 * connection would otherwise answer for a write it never saw).
 */
describe('ReplicaAck', () => {
  let server: TestRedisServer;
  let main: Redis;
  let acked: Redis;

  beforeAll(async () => {
    server = await new TestRedisServer().start();
  });

  beforeEach(() => {
    main = new Redis(server.url);
    acked = new Redis(server.url);
  });

  afterEach(() => {
    main.disconnect();
    acked.disconnect();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('off: the write runs on the shared connection and nothing waits', async () => {
    const acks = ReplicaAck.off(main);
    const started = Date.now();
    expect(
      await acks.write((r) => (r === main ? r.set('off', '1') : Promise.reject(new Error('wrong connection')))),
    ).toBe('OK');
    expect(Date.now() - started).toBeLessThan(200);
    expect(acks.enabled).toBe(false);
  });

  it('on: the write runs on its own connection and fails when no replica confirms in time', async () => {
    const acks = ReplicaAck.on(main, acked, 1, 100);
    let used: RedisClient | undefined;
    const attempt = acks.write(async (r) => {
      used = r;
      return r.set('on', '1');
    });
    await expect(attempt).rejects.toMatchObject({ name: 'ReplicasUnconfirmedError', reason: 'timeout', confirmed: 0 });
    expect(used).toBe(acked);
  });

  it('a refusal that wrote nothing is not waited for', async () => {
    const acks = ReplicaAck.on(main, acked, 1, 2_000);
    const started = Date.now();
    expect(await acks.write(async () => 'refused', { needsAck: () => false })).toBe('refused');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a reconnect between the write and the answer voids the confirmation', async () => {
    const acks = ReplicaAck.on(main, acked, 1, 50);
    const attempt = acks.write(async (r) => {
      const reply = await r.set('reconnected', '1');
      r.disconnect(true);
      return reply;
    });
    await expect(attempt).rejects.toBeInstanceOf(ReplicasUnconfirmedError);
    await expect(attempt).rejects.toMatchObject({ reason: 'reconnected' });
  });

  it('with patience, waits WAIT after WAIT until its signal aborts', async () => {
    const acks = ReplicaAck.on(main, acked, 1, 50);
    const started = Date.now();
    const attempt = acks.write((r) => r.set('patient', '1'), { patience: AbortSignal.timeout(400) });
    await expect(attempt).rejects.toMatchObject({ reason: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });
});
