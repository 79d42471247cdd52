/** Public types of the ComfyUI client. Wire shapes are documented in shared/reference/comfyui/PROTOCOL.md. */
import type { TraceHandle } from '../../../common/observability/observability.hooks';

/** One node of an API-format prompt ("Save (API)" export). */
export interface ComfyPromptNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

export type ComfyPrompt = Record<string, ComfyPromptNode>;

export type ComfyDirType = 'input' | 'output' | 'temp';

/** A file on the server, as `executed` / history outputs and /view name it. */
export interface ComfyFileRef {
  filename: string;
  subfolder: string;
  type: ComfyDirType;
}

/** What POST /upload/image answers. */
export interface ComfyUploadedFile {
  name: string;
  subfolder: string;
  type: ComfyDirType;
}

export interface SubmitOptions {
  /** Our own prompt_id (ComfyUI accepts and echoes it). */
  promptId: string;
  /** Defaults to the client's clientId; execution messages go only to this socket. */
  clientId?: string;
  extraData?: Record<string, unknown>;
  /** Queue ahead of pending items (ComfyUI negates the number). */
  front?: boolean;
  signal?: AbortSignal;
  /** With tracing on: the span the call's span is a child of (the job handler's). */
  trace?: TraceHandle;
}

/** One entry of a validation body's node_errors, flattened. */
export interface ComfyNodeError {
  nodeId: string;
  classType: string;
  /** "message: details" per error. */
  messages: string[];
  /** The raw error objects ({type, message, details, extra_info}). */
  errors: Record<string, unknown>[];
  dependentOutputs: string[];
}

export interface SubmitResult {
  promptId: string;
  number: number;
  /** Outputs ComfyUI skipped because they failed validation (the prompt still runs the good ones). */
  nodeErrors: ComfyNodeError[];
}

export interface ComfyQueueItem {
  number: number;
  promptId: string;
  /** extra_data.client_id: who hears this prompt's execution messages (null: nobody). */
  clientId: string | null;
  outputsToExecute: string[];
}

export interface ComfyQueue {
  running: ComfyQueueItem[];
  /** Sorted by execution order (ascending number), unlike ComfyUI's heap order. */
  pending: ComfyQueueItem[];
}

export interface ComfyNodeOutput {
  images?: ComfyFileRef[];
  [key: string]: unknown;
}

export type ComfyStatusMessage = [event: string, data: Record<string, unknown>];

export interface ComfyHistoryEntry {
  promptId: string;
  number: number;
  clientId: string | null;
  outputs: Record<string, ComfyNodeOutput>;
  /** Every image of every output node, in node order. */
  images: ComfyFileRef[];
  status: { statusStr: string; completed: boolean; messages: ComfyStatusMessage[] } | null;
}

/** Where a prompt is on one server right now. */
export type PromptLocation =
  | { state: 'running'; item: ComfyQueueItem }
  | { state: 'pending'; item: ComfyQueueItem; position: number }
  | { state: 'done'; entry: ComfyHistoryEntry }
  | { state: 'missing' };

export interface ComfyDevice {
  name: string;
  type: string;
  vramTotal: number;
  vramFree: number;
}

export interface ComfySystemStats {
  comfyuiVersion: string;
  os: string;
  ramTotal: number;
  ramFree: number;
  devices: ComfyDevice[];
  /** The body as received. */
  raw: Record<string, unknown>;
}

export interface UploadOptions {
  overwrite?: boolean;
  subfolder?: string;
  /** 'input' (default); 'temp' is wiped by ComfyUI at start-up, so nothing lingers after a restart. */
  type?: ComfyDirType;
  signal?: AbortSignal;
  trace?: TraceHandle;
}

export interface ViewOptions {
  /** Abort and fail with ComfyResponseTooLargeError past this many bytes. */
  maxBytes: number;
  signal?: AbortSignal;
  trace?: TraceHandle;
}

export interface ComfyNodeProgress {
  value: number;
  max: number;
  state: string;
}

/** Progress of one watched prompt, in the order ComfyUI reports it. */
export type ComfyPromptEvent =
  | { type: 'queued'; promptId: string; position: number }
  | { type: 'started'; promptId: string }
  | { type: 'cached'; promptId: string; nodes: string[] }
  | { type: 'executing'; promptId: string; node: string }
  | { type: 'progress'; promptId: string; node: string; value: number; max: number }
  | { type: 'progress_state'; promptId: string; nodes: Record<string, ComfyNodeProgress> }
  | { type: 'executed'; promptId: string; node: string; images: ComfyFileRef[]; output: ComfyNodeOutput }
  | { type: 'preview'; promptId: string; node: string | null; imageType: string; image: Buffer }
  /** How the watch currently learns about the prompt. */
  | { type: 'transport'; promptId: string; mode: 'socket' | 'polling' };

export interface WatchOptions {
  signal?: AbortSignal;
  /** With tracing on: the span the watch's calls (/queue, /history) are children of. */
  trace?: TraceHandle;
  onEvent?: (event: ComfyPromptEvent) => void;
}

export interface PromptResult {
  promptId: string;
  outputs: Record<string, ComfyNodeOutput>;
  images: ComfyFileRef[];
  /** Nodes ComfyUI took from its cache (all of them for an identical re-run). */
  cachedNodes: string[];
  /** Whether the end was seen on the socket or found by polling history. */
  completedVia: 'socket' | 'history';
}

export interface CancelResult {
  via: 'jobs-api' | 'interrupt+delete';
}
