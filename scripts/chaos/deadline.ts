/** The run's global deadline: every wait in the tool is bounded by it (or by something shorter). */
export class Deadline {
  readonly at: number;

  constructor(ms: number) {
    this.at = Date.now() + ms;
  }

  get leftMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  get passed(): boolean {
    return Date.now() >= this.at;
  }

  /** The sooner of `ms` from now and the global deadline. */
  within(ms: number): number {
    return Math.min(ms, this.leftMs);
  }
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Polls `read` until `ok` holds or `timeoutMs` passes; returns the last value and whether it held. */
export async function waitFor<T>(
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<{ value: T; met: boolean }> {
  const until = Date.now() + timeoutMs;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() >= until) return { value, met: false };
    await sleep(intervalMs);
    value = await read();
  }
  return { value, met: true };
}
