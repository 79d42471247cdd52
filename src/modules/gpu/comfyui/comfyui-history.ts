import { ComfyExecutionError, ComfyProtocolError } from './comfyui.errors';
import type {
  ComfyDirType,
  ComfyFileRef,
  ComfyHistoryEntry,
  ComfyNodeOutput,
  ComfyQueue,
  ComfyQueueItem,
  ComfyStatusMessage,
} from './comfyui.types';

/** Parsing of /queue and /history bodies, and what a history entry says about how a prompt ended. */

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function fileRefs(value: unknown): ComfyFileRef[] {
  if (!Array.isArray(value)) return [];
  const refs: ComfyFileRef[] = [];
  for (const item of value) {
    if (!isObj(item) || typeof item.filename !== 'string') continue;
    const type = item.type === 'input' || item.type === 'temp' ? item.type : ('output' as ComfyDirType);
    refs.push({ filename: item.filename, subfolder: str(item.subfolder) ?? '', type });
  }
  return refs;
}

/** An `executed` output / history output object, with `images` normalised. */
export function parseNodeOutput(value: unknown): ComfyNodeOutput {
  if (!isObj(value)) return {};
  return 'images' in value ? { ...value, images: fileRefs(value.images) } : { ...value };
}

/** `[number, prompt_id, prompt, extra_data, outputs_to_execute]` without the prompt (it can be large). */
function queueItem(value: unknown): ComfyQueueItem | null {
  if (!Array.isArray(value) || value.length < 2) return null;
  const [number, promptId, , extra, outputs] = value as unknown[];
  if (typeof number !== 'number' || typeof promptId !== 'string') return null;
  return {
    number,
    promptId,
    clientId: isObj(extra) ? str(extra.client_id) : null,
    outputsToExecute: Array.isArray(outputs) ? outputs.filter((o): o is string => typeof o === 'string') : [],
  };
}

export function parseQueue(body: unknown): ComfyQueue {
  if (!isObj(body)) throw new ComfyProtocolError('GET /queue did not return an object');
  const items = (v: unknown): ComfyQueueItem[] =>
    (Array.isArray(v) ? v : []).map(queueItem).filter((i): i is ComfyQueueItem => i !== null);
  const pending = items(body.queue_pending).sort((a, b) =>
    a.number !== b.number ? a.number - b.number : a.promptId < b.promptId ? -1 : 1,
  );
  return { running: items(body.queue_running), pending };
}

/** One `{prompt_id: entry}` value of /history. */
export function parseHistoryEntry(promptId: string, raw: unknown): ComfyHistoryEntry {
  if (!isObj(raw)) throw new ComfyProtocolError(`history entry of ${promptId} is not an object`);
  const item = queueItem(raw.prompt);
  const outputs: Record<string, ComfyNodeOutput> = {};
  const images: ComfyFileRef[] = [];
  if (isObj(raw.outputs)) {
    for (const [nodeId, output] of Object.entries(raw.outputs)) {
      outputs[nodeId] = parseNodeOutput(output);
      images.push(...(outputs[nodeId].images ?? []));
    }
  }
  let status: ComfyHistoryEntry['status'] = null;
  if (isObj(raw.status)) {
    const messages: ComfyStatusMessage[] = [];
    if (Array.isArray(raw.status.messages)) {
      for (const m of raw.status.messages) {
        if (Array.isArray(m) && typeof m[0] === 'string' && isObj(m[1])) messages.push([m[0], m[1]]);
      }
    }
    status = {
      statusStr: str(raw.status.status_str) ?? 'unknown',
      completed: raw.status.completed === true,
      messages,
    };
  }
  return { promptId, number: item?.number ?? 0, clientId: item?.clientId ?? null, outputs, images, status };
}

export type HistoryOutcome =
  { kind: 'success' } | { kind: 'error'; error: ComfyExecutionError } | { kind: 'interrupted'; nodeId: string | null };

/** How a finished prompt ended, from its status and status messages. */
export function historyOutcome(entry: ComfyHistoryEntry): HistoryOutcome {
  const status = entry.status;
  if (!status || (status.statusStr === 'success' && status.completed)) return { kind: 'success' };
  for (const [event, data] of status.messages) {
    if (event === 'execution_error') {
      return {
        kind: 'error',
        error: new ComfyExecutionError({
          promptId: entry.promptId,
          nodeId: str(data.node_id) ?? '',
          nodeType: str(data.node_type) ?? '',
          exceptionType: str(data.exception_type) ?? 'Exception',
          exceptionMessage: str(data.exception_message) ?? '',
          traceback: Array.isArray(data.traceback)
            ? data.traceback.filter((t): t is string => typeof t === 'string')
            : [],
        }),
      };
    }
    if (event === 'execution_interrupted') return { kind: 'interrupted', nodeId: str(data.node_id) };
  }
  return {
    kind: 'error',
    error: new ComfyExecutionError({
      promptId: entry.promptId,
      nodeId: '',
      nodeType: '',
      exceptionType: 'UnknownError',
      exceptionMessage: `history status ${status.statusStr} without an error message`,
      traceback: [],
    }),
  };
}

/** The nodes ComfyUI reported as cached for this run. */
export function cachedNodesOf(entry: ComfyHistoryEntry): string[] {
  const cached = entry.status?.messages.find(([event]) => event === 'execution_cached');
  const nodes = cached?.[1].nodes;
  return Array.isArray(nodes) ? nodes.filter((n): n is string => typeof n === 'string') : [];
}

/** Whether ComfyUI began executing the prompt (its history keeps the `execution_start` message). */
export function executionStarted(entry: ComfyHistoryEntry): boolean {
  return entry.status?.messages.some(([event]) => event === 'execution_start') ?? false;
}
