import type { ComfyNodeOutput, ComfyNodeProgress } from './comfyui.types';

/** A JSON WebSocket frame, checked field by field (anything malformed becomes `other`). */
export type ComfyWsMessage =
  | { type: 'status'; queueRemaining: number | null; sid: string | null }
  | { type: 'execution_start'; promptId: string }
  | { type: 'execution_cached'; promptId: string; nodes: string[] }
  /** `node: null` is the last frame of a run. On reconnect ComfyUI may send `{node}` without a prompt id. */
  | { type: 'executing'; promptId: string | null; node: string | null }
  | { type: 'progress'; promptId: string; node: string; value: number; max: number }
  | { type: 'progress_state'; promptId: string; nodes: Record<string, ComfyNodeProgress> }
  | { type: 'executed'; promptId: string; node: string; output: ComfyNodeOutput }
  | { type: 'execution_success'; promptId: string }
  | {
      type: 'execution_error';
      promptId: string;
      nodeId: string;
      nodeType: string;
      exceptionType: string;
      exceptionMessage: string;
      traceback: string[];
    }
  | { type: 'execution_interrupted'; promptId: string; nodeId: string | null }
  | { type: 'feature_flags'; flags: Record<string, unknown> }
  | { type: 'other'; rawType: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function parseWsMessage(text: string): ComfyWsMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { type: 'other', rawType: '(not json)' };
  }
  if (!isObj(raw) || typeof raw.type !== 'string') return { type: 'other', rawType: '(no type)' };
  const rawType = raw.type;
  const data = isObj(raw.data) ? raw.data : {};
  const promptId = str(data.prompt_id);
  const other: ComfyWsMessage = { type: 'other', rawType };
  switch (rawType) {
    case 'status': {
      const status = isObj(data.status) ? data.status : {};
      const exec = isObj(status.exec_info) ? status.exec_info : {};
      return { type: 'status', queueRemaining: num(exec.queue_remaining), sid: str(data.sid) };
    }
    case 'execution_start':
    case 'execution_success':
      return promptId === null ? other : { type: rawType, promptId };
    case 'execution_cached':
      return promptId === null ? other : { type: 'execution_cached', promptId, nodes: strings(data.nodes) };
    case 'executing':
      return { type: 'executing', promptId, node: str(data.node) };
    case 'progress': {
      const node = str(data.node);
      const value = num(data.value);
      const max = num(data.max);
      if (promptId === null || node === null || value === null || max === null) return other;
      return { type: 'progress', promptId, node, value, max };
    }
    case 'progress_state': {
      if (promptId === null || !isObj(data.nodes)) return other;
      const nodes: Record<string, ComfyNodeProgress> = {};
      for (const [id, n] of Object.entries(data.nodes)) {
        if (!isObj(n)) continue;
        nodes[id] = { value: num(n.value) ?? 0, max: num(n.max) ?? 1, state: str(n.state) ?? 'unknown' };
      }
      return { type: 'progress_state', promptId, nodes };
    }
    case 'executed': {
      const node = str(data.node);
      if (promptId === null || node === null) return other;
      return { type: 'executed', promptId, node, output: isObj(data.output) ? data.output : {} };
    }
    case 'execution_error':
      if (promptId === null) return other;
      return {
        type: 'execution_error',
        promptId,
        nodeId: str(data.node_id) ?? '',
        nodeType: str(data.node_type) ?? '',
        exceptionType: str(data.exception_type) ?? 'Exception',
        exceptionMessage: str(data.exception_message) ?? '',
        traceback: strings(data.traceback),
      };
    case 'execution_interrupted':
      return promptId === null ? other : { type: 'execution_interrupted', promptId, nodeId: str(data.node_id) };
    case 'feature_flags':
      return { type: 'feature_flags', flags: data };
    default:
      return other;
  }
}
