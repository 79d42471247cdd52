const MAX_LABEL_LENGTH = 64;

/**
 * Caps the distinct values one label may take: every value is a time series in Prometheus, and some of ours come
 * from outside (error codes, Telegram methods, instance names). Past the cap new values are reported as "other".
 */
export class LabelGuard {
  private readonly seen = new Set<string>();

  constructor(private readonly maxValues: number) {}

  value(raw: string | undefined | null): string {
    const value = (raw ?? '').trim().slice(0, MAX_LABEL_LENGTH) || 'unknown';
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.maxValues) return 'other';
    this.seen.add(value);
    return value;
  }
}
