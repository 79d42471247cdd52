/** Lets one progress tick through per interval (and always the last): intermediate ticks are dropped, not queued. */
export class ProgressThrottle {
  private last = 0;

  constructor(private readonly intervalMs: number) {}

  shouldEmit(final = false, now = Date.now()): boolean {
    if (!final && now - this.last < this.intervalMs) return false;
    this.last = now;
    return true;
  }
}
