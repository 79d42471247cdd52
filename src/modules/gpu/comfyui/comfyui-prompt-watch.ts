import type { Logger } from '../../../common/logger';
import { cachedNodesOf, executionStarted, historyOutcome, parseNodeOutput } from './comfyui-history';
import type { ComfyWsMessage } from './comfyui-ws-message';
import {
  ComfyAbortedError,
  ComfyCancelledError,
  ComfyExecutionError,
  ComfyInterruptedError,
  ComfyUiError,
  PromptWentMissingError,
} from './comfyui.errors';
import type {
  ComfyFileRef,
  ComfyHistoryEntry,
  ComfyNodeOutput,
  ComfyPromptEvent,
  PromptLocation,
  PromptResult,
  WatchOptions,
} from './comfyui.types';

export interface WatchTiming {
  /** Poll period while the socket cannot tell us (down, or the prompt belongs to another clientId). */
  pollIntervalMs: number;
  /** Poll period while the socket is up: catches ends the socket missed. */
  safetyPollIntervalMs: number;
  /** Give up (with the last, retriable, error) after this long without reaching the server. */
  unreachableTimeoutMs: number;
  /** At most one preview per this many ms reaches the caller. */
  previewMinIntervalMs: number;
  /** Second look before declaring a prompt missing. */
  missingRecheckMs: number;
}

export interface PromptWatchDeps {
  promptId: string;
  baseUrl: string;
  clientId: string;
  timing: WatchTiming;
  logger: Logger;
  locate(signal: AbortSignal): Promise<PromptLocation>;
  history(signal: AbortSignal): Promise<ComfyHistoryEntry | null>;
  socketOpen(): boolean;
  /**
   * This client submitted the prompt on the socket connection open now: every frame of its run comes to us, so the
   * first poll waits the safety interval instead of running at once (the socket's opening or closing still wakes it).
   */
  socketCoversFromSubmit: boolean;
  /** Whether the server was seen, on this connection, to send `executed` again for cached output nodes. */
  resendsCachedOutputs(connection: number): boolean;
  /** An `executed` frame for a node the run took from the cache arrived on this connection. */
  noteCachedOutputResent(connection: number): void;
  /** Whether this client cancelled the prompt (an interruption or disappearance is then a cancellation). */
  wasCancelled(): boolean;
  onSettled(): void;
}

/**
 * Follows one prompt to its end. Socket messages drive progress and usually the end; a poll of /queue then
 * /history runs beside it — fast while the socket cannot help, slowly as a safety net otherwise — and settles
 * the prompt when the socket missed its end, or reports it missing when it is in neither. A prompt this client
 * submitted on its open socket costs no request at all when the socket carries its whole run: the first poll waits
 * the safety interval, and a success heard from start to end is settled from the frames.
 */
export class PromptWatch {
  readonly result: Promise<PromptResult>;
  private resolveResult!: (result: PromptResult) => void;
  private rejectResult!: (err: Error) => void;
  private settled = false;
  private readonly abort = new AbortController();
  private wakePoll: (() => void) | null = null;
  private poked = false;
  private foreign = false;
  private lastPosition = -1;
  private lastPreviewAt = 0;
  private lastContact = Date.now();
  private mode: 'socket' | 'polling' | null = null;
  private readonly outputs: Record<string, ComfyNodeOutput> = {};
  private cachedNodes: string[] = [];
  private sawSuccess = false;
  private sawStart = false;
  /** The socket connection that carried `execution_start`, while every later frame came on it too; else -1. */
  private heardOn = -1;

  constructor(
    private readonly deps: PromptWatchDeps,
    private readonly opts: WatchOptions,
  ) {
    this.result = new Promise<PromptResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    const signal = opts.signal;
    if (signal?.aborted) {
      this.fail(new ComfyAbortedError(`watch of ${deps.promptId} aborted`, { cause: signal.reason }));
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    void this.pollLoop();
  }

  private readonly onAbort = (): void => {
    this.fail(new ComfyAbortedError(`watch of ${this.deps.promptId} aborted`, { cause: this.opts.signal?.reason }));
  };

  get isSettled(): boolean {
    return this.settled;
  }

  /** A JSON frame about this prompt, received on the client's `connection`-th socket connection. */
  onMessage(msg: ComfyWsMessage, connection: number): void {
    if (this.settled) return;
    this.lastContact = Date.now();
    const promptId = this.deps.promptId;
    if (msg.type === 'execution_start') this.heardOn = connection;
    else if (connection !== this.heardOn) this.heardOn = -1;
    switch (msg.type) {
      case 'execution_start':
        this.noteStarted();
        break;
      case 'execution_cached':
        this.cachedNodes = msg.nodes;
        this.emit({ type: 'cached', promptId, nodes: msg.nodes });
        break;
      case 'executing':
        if (msg.node !== null) this.emit({ type: 'executing', promptId, node: msg.node });
        else void this.finishFromSocket(connection);
        break;
      case 'progress':
        this.emit({ type: 'progress', promptId, node: msg.node, value: msg.value, max: msg.max });
        break;
      case 'progress_state':
        this.emit({ type: 'progress_state', promptId, nodes: msg.nodes });
        break;
      case 'executed': {
        const output = parseNodeOutput(msg.output);
        this.outputs[msg.node] = output;
        if (this.cachedNodes.includes(msg.node)) this.deps.noteCachedOutputResent(connection);
        this.emit({ type: 'executed', promptId, node: msg.node, images: output.images ?? [], output });
        break;
      }
      case 'execution_success':
        this.sawSuccess = true;
        break;
      case 'execution_error':
        this.fail(
          new ComfyExecutionError({
            promptId,
            nodeId: msg.nodeId,
            nodeType: msg.nodeType,
            exceptionType: msg.exceptionType,
            exceptionMessage: msg.exceptionMessage,
            traceback: msg.traceback,
          }),
        );
        break;
      case 'execution_interrupted':
        this.failInterrupted(msg.nodeId);
        break;
      default:
        break;
    }
  }

  /** A preview of this prompt; throttled to one per previewMinIntervalMs. */
  onPreview(node: string | null, imageType: string, image: Buffer): void {
    if (this.settled) return;
    const now = Date.now();
    if (now - this.lastPreviewAt < this.deps.timing.previewMinIntervalMs) return;
    this.lastPreviewAt = now;
    this.emit({ type: 'preview', promptId: this.deps.promptId, node, imageType, image });
  }

  /** Poll now: the socket opened or closed (an end may have been missed), or the prompt was just cancelled. */
  recheck(): void {
    this.pokePoll();
  }

  /** Ends the watch from outside (client closing). */
  close(err: ComfyUiError): void {
    this.fail(err);
  }

  /** `started` once per watch, whichever source (socket, /queue, history) tells first. */
  private noteStarted(): void {
    if (this.sawStart) return;
    this.sawStart = true;
    this.emit({ type: 'started', promptId: this.deps.promptId });
  }

  private emit(event: ComfyPromptEvent): void {
    try {
      this.opts.onEvent?.(event);
    } catch (err) {
      this.deps.logger.warn({ err, promptId: this.deps.promptId }, 'comfyui watch: onEvent threw');
    }
  }

  private pokePoll(): void {
    const wake = this.wakePoll;
    this.wakePoll = null;
    if (wake) wake();
    else this.poked = true;
  }

  /** Waits `ms`, or less when poked (a poke during a poll cuts the next wait). */
  private sleep(ms: number): Promise<void> {
    if (this.poked) {
      this.poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakePoll === done) this.wakePoll = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakePoll = done;
    });
  }

  private socketCovers(): boolean {
    return this.deps.socketOpen() && !this.foreign;
  }

  private async pollLoop(): Promise<void> {
    const { timing } = this.deps;
    let delay = this.deps.socketCoversFromSubmit ? timing.safetyPollIntervalMs : 0;
    let missing = 0;
    while (!this.settled) {
      if (delay > 0) await this.sleep(delay);
      if (this.settled) return;
      let location: PromptLocation;
      try {
        location = await this.deps.locate(this.abort.signal);
      } catch (err) {
        if (this.settled) return;
        const unreachableFor = Date.now() - this.lastContact;
        if (!(err instanceof ComfyUiError) || !err.retriable || unreachableFor > timing.unreachableTimeoutMs) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        this.deps.logger.debug({ err, promptId: this.deps.promptId }, 'comfyui watch: poll failed, retrying');
        delay = timing.pollIntervalMs;
        continue;
      }
      if (this.settled) return;
      this.lastContact = Date.now();
      if (location.state === 'missing') {
        missing++;
        if (missing >= 2) {
          this.fail(
            this.deps.wasCancelled()
              ? new ComfyCancelledError(this.deps.promptId)
              : new PromptWentMissingError(this.deps.promptId, this.deps.baseUrl),
          );
          return;
        }
        delay = timing.missingRecheckMs;
        continue;
      }
      missing = 0;
      if (location.state === 'done') {
        this.finishFromHistory(location.entry, 'history');
        return;
      }
      if (location.item.clientId !== this.deps.clientId) this.foreign = true;
      // ComfyUI sends execution_start only to the submitting clientId: for a prompt submitted by a dead worker,
      // the running list of /queue is the only sign that it left the queue.
      if (location.state === 'running') this.noteStarted();
      if (location.state === 'pending' && location.position !== this.lastPosition) {
        this.lastPosition = location.position;
        this.emit({ type: 'queued', promptId: this.deps.promptId, position: location.position });
      }
      const mode = this.socketCovers() ? 'socket' : 'polling';
      if (mode !== this.mode) {
        this.mode = mode;
        this.emit({ type: 'transport', promptId: this.deps.promptId, mode });
      }
      delay = mode === 'socket' ? timing.safetyPollIntervalMs : timing.pollIntervalMs;
    }
  }

  /**
   * `executing {node: null}` came: the run is over. When this connection carried the whole run, from
   * `execution_start` through `execution_success`, the frames hold everything its history would (each output node's
   * `executed`, the cached nodes), and the run is settled from them without a request. That takes one more condition
   * when the run took nodes from the cache: ComfyUI 0.3.64 sends `executed` again for a cached output node, but
   * releases before its execution rewrite (mid-2024) did not, so the frames are trusted only once this server was
   * seen doing it on this connection. Otherwise (a reconnect in between, a start missed, an error or an
   * interruption the frames did not explain) the history, already written, is read.
   */
  private async finishFromSocket(connection: number): Promise<void> {
    if (
      this.sawSuccess &&
      this.heardOn === connection &&
      (this.cachedNodes.length === 0 || this.deps.resendsCachedOutputs(connection))
    ) {
      this.succeed(this.outputs, this.cachedNodes, 'socket');
      return;
    }
    let entry: ComfyHistoryEntry | null = null;
    try {
      entry = await this.deps.history(this.abort.signal);
    } catch (err) {
      this.deps.logger.debug({ err, promptId: this.deps.promptId }, 'comfyui watch: history after end failed');
    }
    if (this.settled) return;
    if (entry) {
      this.finishFromHistory(entry, 'socket');
    } else if (this.sawSuccess) {
      this.succeed(this.outputs, this.cachedNodes, 'socket');
    } else {
      this.pokePoll();
    }
  }

  private finishFromHistory(entry: ComfyHistoryEntry, via: PromptResult['completedVia']): void {
    // It may have started and ended between two polls: its history still says it ran.
    if (executionStarted(entry)) this.noteStarted();
    const outcome = historyOutcome(entry);
    if (outcome.kind === 'success') this.succeed(entry.outputs, cachedNodesOf(entry), via);
    else if (outcome.kind === 'error') this.fail(outcome.error);
    else this.failInterrupted(outcome.nodeId);
  }

  private failInterrupted(nodeId: string | null): void {
    this.fail(
      this.deps.wasCancelled()
        ? new ComfyCancelledError(this.deps.promptId)
        : new ComfyInterruptedError(this.deps.promptId, nodeId),
    );
  }

  private succeed(
    outputs: Record<string, ComfyNodeOutput>,
    cachedNodes: string[],
    via: PromptResult['completedVia'],
  ): void {
    if (this.settled) return;
    const images: ComfyFileRef[] = Object.values(outputs).flatMap((o) => o.images ?? []);
    this.settle();
    this.resolveResult({ promptId: this.deps.promptId, outputs, images, cachedNodes, completedVia: via });
  }

  private fail(err: Error): void {
    if (this.settled) return;
    this.settle();
    this.rejectResult(err);
  }

  private settle(): void {
    this.settled = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.abort.abort();
    this.pokePoll();
    this.deps.onSettled();
  }
}
