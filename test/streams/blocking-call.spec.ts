import { blockingCall } from '../../src/streams/blocking-call';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('blockingCall (a blocking read with its own deadline)', () => {
  const prefix = uniquePrefix('blocking');
  const admin = testRedis();

  afterAll(async () => {
    await cleanupPrefix(admin, prefix);
    admin.disconnect();
  });

  it('past the deadline: rejects "timed out" and drops the connection, which reconnects', async () => {
    const conn = testRedis();
    await conn.ping();
    await expect(blockingCall(conn, 100, 'XREAD', ['BLOCK', '1500', 'STREAMS', `${prefix}s`, '$'])).rejects.toThrow(
      /timed out/,
    );
    expect(await conn.ping()).toBe('PONG');
    conn.disconnect();
  });

  it('a read that fails before its deadline (connection closed) leaves no timer behind', async () => {
    const conn = testRedis();
    await conn.ping();
    const before = timers();
    const read = blockingCall(conn, 60_000, 'XREAD', ['BLOCK', '30000', 'STREAMS', `${prefix}s`, '$']);
    expect(timers()).toBe(before + 1);
    conn.disconnect();
    await expect(read).rejects.toThrow();
    // ioredis' own commandTimeout would still hold a 60 s timer here and keep the process alive.
    expect(timers()).toBe(before);
  });
});
