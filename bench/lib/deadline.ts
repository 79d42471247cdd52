/** Every wait in the bench has a deadline; this is the one helper they all use. */

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `read` every `intervalMs` until `done(value)` or the deadline; returns the last value and the time
 * (performance.now()) at which the condition was first seen. Throws DeadlineError naming `what` and the last value.
 */
export async function waitFor<T>(
  what: string,
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs, intervalMs = 10 }: { timeoutMs: number; intervalMs?: number },
): Promise<{ value: T; at: number }> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const value = await read();
    const at = performance.now();
    if (done(value)) return { value, at };
    if (at > deadline) {
      throw new DeadlineError(`${what}: not reached within ${timeoutMs} ms (last: ${short(value)}, ${i + 1} polls)`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects with DeadlineError if `promise` has not settled within `timeoutMs`. */
export async function withDeadline<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `task(i)` for i in [0, count) with at most `limit` in flight; stops at the deadline. */
export async function runLimited(
  count: number,
  limit: number,
  task: (i: number) => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      if (performance.now() > deadline)
        throw new DeadlineError(`runLimited: ${next}/${count} started in ${timeoutMs} ms`);
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(lanes);
}

function short(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    return String(value);
  }
}
