/**
 * Busy time of one ComfyUI instance: total busy seconds (a counter Prometheus can rate()) and the busy fraction
 * over a sliding window (a gauge readable without PromQL). Fed by the running-job counts the GPU module reports.
 */
export class BusyWindowTracker {
  private busySince?: number;
  private readonly intervals: [number, number][] = [];
  private closedBusyMs = 0;

  constructor(
    private readonly windowMs: number,
    private readonly createdAt = Date.now(),
  ) {}

  set(busy: boolean, now = Date.now()): void {
    if (busy && this.busySince === undefined) {
      this.busySince = now;
    } else if (!busy && this.busySince !== undefined) {
      this.intervals.push([this.busySince, now]);
      this.closedBusyMs += now - this.busySince;
      this.busySince = undefined;
    }
    this.prune(now);
  }

  get busy(): boolean {
    return this.busySince !== undefined;
  }

  busySecondsTotal(now = Date.now()): number {
    const open = this.busySince === undefined ? 0 : now - this.busySince;
    return (this.closedBusyMs + open) / 1000;
  }

  /** Busy fraction of the last `windowMs` (or of the time since tracking began, when that is shorter). */
  ratio(now = Date.now()): number {
    this.prune(now);
    const start = Math.max(now - this.windowMs, this.createdAt);
    const span = now - start;
    if (span <= 0) return this.busy ? 1 : 0;
    let busyMs = 0;
    for (const [from, to] of this.intervals) busyMs += Math.max(0, Math.min(to, now) - Math.max(from, start));
    if (this.busySince !== undefined) busyMs += now - Math.max(this.busySince, start);
    return Math.min(1, Math.max(0, busyMs / span));
  }

  private prune(now: number): void {
    const start = now - this.windowMs;
    while (this.intervals.length > 0 && this.intervals[0][1] < start) this.intervals.shift();
  }
}
