export interface PollOptions {
  timeoutMs?: number;
  intervalMs?: number;
  description?: string;
}

/** Polls `read` until `predicate` holds; returns the last value read. Throws with the last value at the deadline. */
export async function pollUntil<T>(
  read: () => T | Promise<T>,
  predicate: (value: T) => boolean,
  { timeoutMs = 10_000, intervalMs = 20, description = 'condition' }: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!predicate(last)) {
    if (Date.now() > deadline) {
      throw new Error(`pollUntil: ${description} not met within ${timeoutMs} ms; last value: ${safeJson(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await read();
  }
  return last;
}

/** Retries an assertion until it passes; rethrows its last error at the deadline. */
export async function expectEventually(
  assertion: () => void | Promise<void>,
  { timeoutMs = 10_000, intervalMs = 20 }: PollOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

function safeJson(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  } catch {
    return String(value);
  }
}
