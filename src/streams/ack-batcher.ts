import type { RedisClient } from '../redis/redis-client';

interface Batch {
  ids: string[];
  settle: { resolve: () => void; reject: (err: unknown) => void }[];
}

/**
 * Acknowledges a consumer group's entries in batches: entries whose handlers finish in the same turn of the event
 * loop (a projector's whole XREADGROUP batch of already-applied events, say) leave in one XACK per stream instead
 * of one each. Nothing waits on a timer: the batch goes at the end of the current turn (setImmediate).
 */
export class AckBatcher {
  private readonly batches = new Map<string, Batch>();
  private scheduled = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly group: string,
  ) {}

  /** Resolves once the entry is acknowledged; rejects with the XACK's error (the entry then stays pending). */
  ack(stream: string, id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(stream);
      if (!batch) {
        batch = { ids: [], settle: [] };
        this.batches.set(stream, batch);
      }
      batch.ids.push(id);
      batch.settle.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.batches];
    this.batches.clear();
    for (const [stream, batch] of batches) {
      this.redis.xack(stream, this.group, ...batch.ids).then(
        () => batch.settle.forEach((s) => s.resolve()),
        (err: unknown) => batch.settle.forEach((s) => s.reject(err)),
      );
    }
  }
}
