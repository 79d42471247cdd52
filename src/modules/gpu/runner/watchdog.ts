/**
 * Two timers over one prompt: a hard deadline from submission, and a no-progress timer armed once the prompt
 * runs (a prompt waiting behind another in ComfyUI's queue is not stalled) and re-armed by every sign of life.
 */
export class Watchdog {
  private readonly controller = new AbortController();
  private readonly deadline: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private fired?: 'job_timeout' | 'no_progress';

  constructor(
    private readonly jobTimeoutMs: number,
    private readonly noProgressTimeoutMs: number,
  ) {
    this.deadline = setTimeout(() => this.fire('job_timeout'), jobTimeoutMs);
    this.deadline.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A sign of life from a running prompt. */
  running(): void {
    if (this.fired) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.fire('no_progress'), this.noProgressTimeoutMs);
    this.idleTimer.unref();
  }

  code(): string {
    return this.fired ?? 'watchdog';
  }

  reason(): string {
    return this.fired === 'no_progress'
      ? `No progress from ComfyUI for ${this.noProgressTimeoutMs} ms; cancelled there, will retry elsewhere.`
      : `The job ran past JOB_TIMEOUT_MS (${this.jobTimeoutMs} ms); cancelled on ComfyUI.`;
  }

  dispose(): void {
    clearTimeout(this.deadline);
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }

  private fire(kind: 'job_timeout' | 'no_progress'): void {
    if (this.fired) return;
    this.fired = kind;
    this.controller.abort(new Error(kind));
  }
}
