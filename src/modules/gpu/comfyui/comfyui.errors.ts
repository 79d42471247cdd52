import type { ComfyNodeError } from './comfyui.types';

/**
 * Every ComfyUI client failure is one of these. `retriable` answers "may the same job succeed if tried again,
 * here later or on another instance?":
 *
 *   ComfyUnavailableError      connection refused/reset/closed, DNS, connect timeout   retriable
 *   ComfyTimeoutError          no response headers/body in time                        retriable
 *   ComfyHttpError             unexpected status: 5xx, 408, 429 retriable; other 4xx not
 *   ComfyProtocolError         a body that is not what ComfyUI sends (proxy page, ...)  retriable
 *   ComfyValidationError       400 from POST /prompt: the graph is wrong               not retriable
 *   ComfyExecutionError        execution_error from a node                             retriable only when out of memory
 *   ComfyInterruptedError      interrupted by someone else (operator, global /interrupt) retriable
 *   ComfyCancelledError        we cancelled it (cancel())                              not retriable
 *   PromptWentMissingError     in neither queue nor history (server restarted, queue cleared) retriable
 *   ComfyResponseTooLargeError /view body past maxBytes                                not retriable
 *   ComfyNotFoundError         /view 404: the output file is gone                      not retriable
 *   ComfyAbortedError          the caller's AbortSignal fired                          not retriable
 *   ComfyClientClosedError     client.close() while a call was in flight               retriable
 */
export abstract class ComfyUiError extends Error {
  abstract readonly code: string;
  abstract readonly retriable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ComfyUnavailableError extends ComfyUiError {
  readonly code = 'COMFY_UNAVAILABLE';
  readonly retriable = true;
}

export class ComfyTimeoutError extends ComfyUiError {
  readonly code = 'COMFY_TIMEOUT';
  readonly retriable = true;
}

export class ComfyHttpError extends ComfyUiError {
  readonly code = 'COMFY_HTTP';
  readonly retriable: boolean;

  constructor(
    readonly status: number,
    readonly body: string,
    message = `ComfyUI answered HTTP ${status}`,
  ) {
    super(message);
    this.retriable = status >= 500 || status === 408 || status === 429;
  }
}

export class ComfyProtocolError extends ComfyUiError {
  readonly code = 'COMFY_PROTOCOL';
  readonly retriable = true;
}

export class ComfyValidationError extends ComfyUiError {
  readonly code = 'COMFY_VALIDATION';
  readonly retriable = false;

  constructor(
    /** error.type: invalid_prompt, prompt_no_outputs, no_prompt, prompt_outputs_failed_validation, ... */
    readonly errorType: string,
    readonly errorMessage: string,
    readonly details: string,
    readonly nodeErrors: ComfyNodeError[],
  ) {
    const first = nodeErrors[0];
    const where = first ? ` (node ${first.nodeId} ${first.classType}: ${first.messages.join('; ')})` : '';
    super(`ComfyUI rejected the prompt: ${errorMessage}${details ? `: ${details}` : ''}${where}`);
  }
}

export interface ExecutionErrorInfo {
  promptId: string;
  nodeId: string;
  nodeType: string;
  exceptionType: string;
  exceptionMessage: string;
  traceback: string[];
}

const OOM_PATTERN = /out ?of ?memory|OutOfMemory|Allocation on device|CUDA error: out of memory|\bOOM\b/i;

export class ComfyExecutionError extends ComfyUiError {
  readonly code = 'COMFY_EXECUTION';
  readonly retriable: boolean;
  readonly isOutOfMemory: boolean;
  readonly promptId: string;
  readonly nodeId: string;
  readonly nodeType: string;
  readonly exceptionType: string;
  readonly exceptionMessage: string;
  readonly traceback: string[];

  constructor(info: ExecutionErrorInfo) {
    super(
      `ComfyUI node ${info.nodeId} (${info.nodeType}) failed: ${info.exceptionType}: ${info.exceptionMessage.trim()}`,
    );
    this.promptId = info.promptId;
    this.nodeId = info.nodeId;
    this.nodeType = info.nodeType;
    this.exceptionType = info.exceptionType;
    this.exceptionMessage = info.exceptionMessage;
    this.traceback = info.traceback;
    // Out of memory depends on what else the GPU holds: another instance, or later, may well succeed.
    this.isOutOfMemory = OOM_PATTERN.test(info.exceptionType) || OOM_PATTERN.test(info.exceptionMessage);
    this.retriable = this.isOutOfMemory;
  }
}

export class ComfyInterruptedError extends ComfyUiError {
  readonly code = 'COMFY_INTERRUPTED';
  readonly retriable = true;

  constructor(
    readonly promptId: string,
    readonly nodeId: string | null,
  ) {
    super(`ComfyUI interrupted prompt ${promptId}${nodeId ? ` at node ${nodeId}` : ''}`);
  }
}

export class ComfyCancelledError extends ComfyUiError {
  readonly code = 'COMFY_CANCELLED';
  readonly retriable = false;

  constructor(readonly promptId: string) {
    super(`prompt ${promptId} was cancelled`);
  }
}

export class PromptWentMissingError extends ComfyUiError {
  readonly code = 'COMFY_WENT_MISSING';
  readonly retriable = true;

  constructor(
    readonly promptId: string,
    readonly baseUrl: string,
  ) {
    super(`prompt ${promptId} is in neither the queue nor the history of ${baseUrl}`);
  }
}

export class ComfyResponseTooLargeError extends ComfyUiError {
  readonly code = 'COMFY_TOO_LARGE';
  readonly retriable = false;

  constructor(
    readonly maxBytes: number,
    readonly announcedBytes: number | null,
  ) {
    super(
      `ComfyUI response exceeds ${maxBytes} bytes${announcedBytes !== null ? ` (${announcedBytes} announced)` : ''}`,
    );
  }
}

export class ComfyNotFoundError extends ComfyUiError {
  readonly code = 'COMFY_NOT_FOUND';
  readonly retriable = false;
}

export class ComfyAbortedError extends ComfyUiError {
  readonly code = 'COMFY_ABORTED';
  readonly retriable = false;
}

export class ComfyClientClosedError extends ComfyUiError {
  readonly code = 'COMFY_CLIENT_CLOSED';
  readonly retriable = true;
}
