import type { SimHistoryEntry, SimQueueItem } from './comfyui-sim.types';

/** Python tuple ordering of queue items: (number, prompt_id, ...). */
function less(a: SimQueueItem, b: SimQueueItem): boolean {
  if (a.number !== b.number) return a.number < b.number;
  return a.promptId < b.promptId;
}

/** heapq._siftdown / _siftup, so GET /queue lists pending items in the same (heap) order ComfyUI does. */
function siftDown(heap: SimQueueItem[], start: number, pos: number): void {
  const item = heap[pos];
  while (pos > start) {
    const parentPos = (pos - 1) >> 1;
    const parent = heap[parentPos];
    if (!less(item, parent)) break;
    heap[pos] = parent;
    pos = parentPos;
  }
  heap[pos] = item;
}

function siftUp(heap: SimQueueItem[], pos: number): void {
  const end = heap.length;
  const start = pos;
  const item = heap[pos];
  let child = 2 * pos + 1;
  while (child < end) {
    const right = child + 1;
    if (right < end && !less(heap[child], heap[right])) child = right;
    heap[pos] = heap[child];
    pos = child;
    child = 2 * pos + 1;
  }
  heap[pos] = item;
  siftDown(heap, start, pos);
}

export interface HistoryResult {
  outputs: SimHistoryEntry['outputs'];
  meta: SimHistoryEntry['meta'];
  status: SimHistoryEntry['status'];
}

/**
 * execution.PromptQueue: a heap of pending items, the running items, and the in-memory history (oldest first,
 * capped). `onUpdated` is server.queue_updated(): a `status` broadcast.
 */
export class SimPromptQueue {
  private heap: SimQueueItem[] = [];
  private readonly running = new Map<number, SimQueueItem>();
  private readonly history = new Map<string, SimHistoryEntry>();
  private taskCounter = 0;
  private waiter: (() => void) | null = null;

  constructor(
    private readonly onUpdated: () => void,
    private readonly maxHistory = 10_000,
  ) {}

  put(item: SimQueueItem): void {
    this.heap.push(item);
    siftDown(this.heap, 0, this.heap.length - 1);
    this.onUpdated();
    const wake = this.waiter;
    this.waiter = null;
    wake?.();
  }

  /** Pops the next item (waiting for one); resolves null once `signal` aborts. */
  async take(signal: AbortSignal): Promise<{ item: SimQueueItem; taskId: number } | null> {
    while (this.heap.length === 0) {
      if (signal.aborted) return null;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiter = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (signal.aborted) return null;
    const last = this.heap.pop()!;
    let item = last;
    if (this.heap.length > 0) {
      item = this.heap[0];
      this.heap[0] = last;
      siftUp(this.heap, 0);
    }
    const taskId = this.taskCounter++;
    this.running.set(taskId, item);
    this.onUpdated();
    return { item, taskId };
  }

  taskDone(taskId: number, result: HistoryResult): void {
    const item = this.running.get(taskId);
    if (!item) return;
    this.running.delete(taskId);
    if (this.history.size > this.maxHistory) {
      const oldest = this.history.keys().next();
      if (!oldest.done) this.history.delete(oldest.value);
    }
    this.history.set(item.promptId, {
      prompt: [item.number, item.promptId, item.prompt, item.extraData, item.outputsToExecute],
      outputs: result.outputs,
      status: result.status,
      meta: result.meta,
    });
    this.onUpdated();
  }

  remaining(): number {
    return this.heap.length + this.running.size;
  }

  runningItems(): SimQueueItem[] {
    return [...this.running.values()];
  }

  pendingItems(): SimQueueItem[] {
    return [...this.heap];
  }

  wipeQueue(): void {
    this.heap = [];
    this.onUpdated();
  }

  /** Removes the first pending item matching; like ComfyUI, a lone item is removed by wiping (two broadcasts). */
  deleteQueueItem(match: (item: SimQueueItem) => boolean): boolean {
    const index = this.heap.findIndex(match);
    if (index < 0) return false;
    if (this.heap.length === 1) {
      this.wipeQueue();
    } else {
      this.heap.splice(index, 1);
      for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) siftUp(this.heap, i);
    }
    this.onUpdated();
    return true;
  }

  historyEntry(promptId: string): SimHistoryEntry | undefined {
    return this.history.get(promptId);
  }

  /** get_history(): `max_items` alone returns the newest N; with `offset` it pages from the oldest. */
  historySlice(maxItems: number | null, offset: number): Record<string, SimHistoryEntry> {
    const out: Record<string, SimHistoryEntry> = {};
    if (offset < 0 && maxItems !== null) offset = this.history.size - maxItems;
    let i = 0;
    let count = 0;
    for (const [id, entry] of this.history) {
      if (i >= offset) {
        out[id] = entry;
        count++;
        if (maxItems !== null && count >= maxItems) break;
      }
      i++;
    }
    return out;
  }

  historySize(): number {
    return this.history.size;
  }

  deleteHistory(promptId: string): void {
    this.history.delete(promptId);
  }

  wipeHistory(): void {
    this.history.clear();
  }
}
