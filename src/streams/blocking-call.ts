import type { RedisClient } from '../redis/redis-client';

/**
 * A blocking read (XREAD/XREADGROUP … BLOCK) with a deadline of our own. ioredis' `commandTimeout` clears its timer
 * only when a reply arrives, not when the command fails (connection closed on shutdown, CLIENT UNBLOCK): a closed
 * reader then kept its process alive until the timer fired, BLOCK + 10 s later. Past the deadline the connection is
 * presumed half-open and is dropped (it reconnects), so the pending call fails and the next read starts afresh.
 */
/**
 * `command` in lower case: ioredis finds a command's keys (and so, on a cluster, the primary to send it to) only by
 * its lower-case name; `XREADGROUP` would go to any primary and come back MOVED.
 */
export async function blockingCall(
  conn: RedisClient,
  deadlineMs: number,
  command: string,
  args: string[],
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      conn.disconnect(true);
      reject(new Error(`${command} timed out after ${deadlineMs} ms`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([conn.call(command, ...args), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
