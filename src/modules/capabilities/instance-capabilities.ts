import { MODEL_INPUT_NAME } from '../../workflows';

/**
 * What one ComfyUI instance can run, read from its `/object_info`: its node classes and, per loader class, the
 * model files each model input accepts (the files the instance has).
 */
export interface InstanceCapabilities {
  /** Sorted node class names (NODE_CLASS_MAPPINGS). */
  readonly nodeClasses: readonly string[];
  /** Node class → model input (ckpt_name, unet_name, …) → the files it accepts. */
  readonly models: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  /** Hash of the /object_info body it was read from: an unchanged body is not parsed again. */
  readonly hash: string;
  readonly readAt: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Parses a full `GET /object_info` body. A model input's choices come in two shapes: the classic
 * `[["a.safetensors", …], {options}]` (ComfyUI 0.3.x, an empty list when the folder is empty) and the newer
 * `["COMBO", {"options": [...]}]` of V3 nodes; both are read.
 */
export function capabilitiesFromObjectInfo(body: unknown, hash: string, readAt: number): InstanceCapabilities {
  if (!isObj(body)) throw new Error('GET /object_info did not return an object of node classes');
  const models: Record<string, Record<string, string[]>> = {};
  for (const [classType, info] of Object.entries(body)) {
    if (!isObj(info) || !isObj(info.input)) continue;
    for (const section of [info.input.required, info.input.optional]) {
      if (!isObj(section)) continue;
      for (const [input, spec] of Object.entries(section)) {
        if (!MODEL_INPUT_NAME.test(input)) continue;
        const choices = comboChoices(spec);
        if (choices) (models[classType] ??= {})[input] = choices;
      }
    }
  }
  return { nodeClasses: Object.keys(body).sort(), models, hash, readAt };
}

function comboChoices(spec: unknown): string[] | undefined {
  if (!Array.isArray(spec)) return undefined;
  const [type, options] = spec as unknown[];
  const list = Array.isArray(type) ? type : type === 'COMBO' && isObj(options) ? options.options : undefined;
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : undefined;
}

export interface CapabilitySummary {
  nodeClasses: number;
  /** Model input (ckpt_name, …) → the files listed for it, over every loader class. */
  models: Record<string, string[]>;
  hash: string;
  readAt: number;
}

/** A short description for /health and `cli stats`: counts, and the model files by input. */
export function summarizeCapabilities(caps: InstanceCapabilities): CapabilitySummary {
  const files: Record<string, string[]> = {};
  for (const inputs of Object.values(caps.models)) {
    for (const [input, list] of Object.entries(inputs)) {
      files[input] = [...new Set([...(files[input] ?? []), ...list])].sort();
    }
  }
  return { nodeClasses: caps.nodeClasses.length, models: files, hash: caps.hash.slice(0, 12), readAt: caps.readAt };
}
