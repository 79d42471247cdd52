import Redis from 'ioredis';
import { pollUntil } from './poll-until';

/**
 * One command to the redis-server (or sentinel) on 127.0.0.1:`port`, on a short-lived connection with no retries: a
 * dead node fails at once instead of being waited for. For the test's own servers (clusters, Sentinel sets).
 */
export async function askRedis(port: number, command: readonly string[]): Promise<unknown> {
  const probe = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await probe.call(command[0]!, ...command.slice(1));
  } finally {
    probe.disconnect();
  }
}

/** Until the server on `port` answers PING (10 s at most). */
export async function waitForRedis(port: number): Promise<void> {
  await pollUntil(
    () => askRedis(port, ['PING']).catch(() => null),
    (reply) => reply === 'PONG',
    { timeoutMs: 10_000, intervalMs: 50, description: `redis-server on ${port}` },
  );
}
