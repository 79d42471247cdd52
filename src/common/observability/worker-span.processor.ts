import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { diag, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  wireOf,
  type ExportWorkerData,
  type FromExportWorker,
  type ToExportWorker,
  type WireSpan,
} from './span-export.wire';

/** Spans handed to the export thread at once, or after this long (whichever comes first). */
const HANDOFF_SPANS = 128;
const HANDOFF_MS = 100;

/**
 * Finished spans go to a worker thread (./span-export.worker), which batches, scrubs, encodes and exports them: on
 * the event loop that runs jobs, a span's export costs copying its fields into a plain object, and a structured
 * clone per hand-off of HANDOFF_SPANS. Batching, scrubbing and OTLP encoding were a third of tracing's cost in a
 * gpu process (a profile of the bench's tracing rows), all of it paid between two jobs.
 *
 * Unsampled spans are dropped here, as the BatchSpanProcessor drops them. forceFlush and shutdown reach through to the
 * worker's batch processor; the worker does not keep the process alive (as the batch processor's timer did not).
 */
export class WorkerSpanProcessor implements SpanProcessor {
  private readonly worker: Worker;
  private pending: WireSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private calls = 0;
  private readonly waiting = new Map<number, () => void>();
  private stopped = false;

  constructor(data: ExportWorkerData) {
    const file = join(__dirname, `span-export.worker${extname(__filename)}`);
    // From the TypeScript sources (ts-node, jest), the worker compiles its module the way the process does.
    const execArgv = extname(__filename) === '.ts' ? ['--require', 'ts-node/register/transpile-only'] : [];
    this.worker = new Worker(file, { workerData: data, execArgv });
    this.worker.unref();
    this.worker.on('message', (message: FromExportWorker) => {
      this.waiting.get(message.done)?.();
      this.waiting.delete(message.done);
      if (this.waiting.size === 0) this.worker.unref();
    });
    this.worker.on('error', (err) => diag.error('span export thread failed', err));
    this.worker.on('exit', () => {
      this.stopped = true;
      for (const done of this.waiting.values()) done();
      this.waiting.clear();
    });
  }

  onStart(_span: Span): void {}

  onEnd(span: ReadableSpan): void {
    if (this.stopped || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    this.pending.push(wireOf(span));
    if (this.pending.length >= HANDOFF_SPANS) this.handOff();
    else this.timer ??= setTimeout(() => this.handOff(), HANDOFF_MS).unref();
  }

  forceFlush(): Promise<void> {
    return this.call('flush');
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    await this.call('shutdown');
    this.stopped = true;
    await this.worker.terminate();
  }

  private handOff(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || this.stopped) return;
    this.post({ spans: this.pending });
    this.pending = [];
  }

  private call(call: 'flush' | 'shutdown'): Promise<void> {
    this.handOff();
    if (this.stopped) return Promise.resolve();
    const id = ++this.calls;
    const done = new Promise<void>((resolve) => this.waiting.set(id, resolve));
    // Held while the worker exports, so a process that has nothing else left to do waits for its spans.
    this.worker.ref();
    this.post({ call, id });
    return done;
  }

  private post(message: ToExportWorker): void {
    this.worker.postMessage(message);
  }
}
