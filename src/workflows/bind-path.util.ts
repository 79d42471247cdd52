import type { JsonValue, NodeLink } from './workflow.types';

export interface BindTarget {
  readonly nodeId: string;
  readonly inputName: string;
}

// Node ids may carry subgraph prefixes ("12:3"); neither part may contain a dot, so the split is unambiguous.
export const BIND_PATH = /^([^.\s]+)\.inputs\.([^.\s]+)$/;

/** Parses "<nodeId>.inputs.<inputName>"; undefined when the path has any other shape. */
export function parseBindPath(path: string): BindTarget | undefined {
  const match = BIND_PATH.exec(path);
  // Assigning to a "__proto__" key would replace a prototype instead of setting an input.
  if (!match || match[1] === '__proto__' || match[2] === '__proto__') return undefined;
  return { nodeId: match[1], inputName: match[2] };
}

/** ComfyUI treats every list-valued input as a link, so any array in `inputs` must be one. */
export function isLinkShaped(value: JsonValue | undefined): value is readonly JsonValue[] {
  return Array.isArray(value);
}

export function isValidLink(value: readonly JsonValue[]): value is NodeLink {
  return (
    value.length === 2 &&
    typeof value[0] === 'string' &&
    typeof value[1] === 'number' &&
    Number.isSafeInteger(value[1]) &&
    value[1] >= 0
  );
}
