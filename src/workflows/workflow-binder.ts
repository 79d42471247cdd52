import { parseBindPath } from './bind-path.util';
import { checkScalarValue } from './input-rules.util';
import { MAX_SEED, randomSeed } from './seed.util';
import { WorkflowBindError } from './workflow.errors';
import { resolveOutputNodeIds } from './template-graph.validator';
import {
  RANDOM_SEED,
  type ApiPrompt,
  type BoundWorkflow,
  type IntegerInputSpec,
  type JsonValue,
  type WorkflowTemplate,
} from './workflow.types';

export interface BindOptions {
  /** Input name → file name returned by ComfyUI's /upload/image (with its subfolder, if any) for each image input. */
  readonly uploadedImages: Readonly<Record<string, string>>;
  /** Source of raw seeds for "random" inputs; default: crypto-random 53-bit. See deterministicSeedSource. */
  readonly seedSource?: () => number;
}

/**
 * Produces the prompt to POST to ComfyUI: a deep copy of the template graph with every bind path set.
 * Never mutates the template. Seeds are resolved here rather than at submit time so the validated inputs
 * stay deterministic (the same request yields the same job.requested payload); the seeds picked are
 * returned so the runner can report them, and a seedSource keyed by job id makes retries reproducible.
 *
 * `values` normally come from validateInputs (possibly after a trip through a stream), so they are re-checked
 * against the template; image values are ignored in favour of `uploadedImages`. Throws WorkflowBindError.
 */
export function bindWorkflow(
  template: WorkflowTemplate,
  values: Readonly<Record<string, unknown>>,
  options: BindOptions,
): BoundWorkflow {
  const fail = (message: string): never => {
    throw new WorkflowBindError(template.name, message);
  };
  for (const name of [...Object.keys(values), ...Object.keys(options.uploadedImages)]) {
    if (!Object.hasOwn(template.inputs, name)) fail(`unknown input "${name}"`);
  }

  const prompt = structuredClone(template.prompt) as ApiPrompt;
  const seeds: Record<string, number> = {};
  const seedSource = options.seedSource ?? randomSeed;

  for (const [name, spec] of Object.entries(template.inputs)) {
    let value: JsonValue;
    if (spec.type === 'image') {
      const fileName = Object.hasOwn(options.uploadedImages, name) ? options.uploadedImages[name] : undefined;
      if (fileName === undefined) return fail(`no uploaded file name for image input "${name}"`);
      const problem = checkUploadedName(fileName);
      if (problem) return fail(`uploaded file name for "${name}" ${problem}`);
      value = fileName;
    } else {
      const given = Object.hasOwn(values, name) ? values[name] : undefined;
      const chosen = given ?? spec.default;
      if (chosen === undefined) {
        if (spec.required === true) fail(`required input "${name}" has no value`);
        continue; // optional and no default: the graph's own literal stays
      }
      if (spec.type === 'integer' && chosen === RANDOM_SEED && spec.default === RANDOM_SEED) {
        const seed = pickSeed(spec, seedSource, fail);
        seeds[name] = seed;
        value = seed;
      } else {
        const problem = checkScalarValue(spec, chosen);
        if (problem) return fail(`input "${name}" ${problem}`);
        value = chosen as JsonValue;
      }
    }
    for (const path of spec.bind) setLiteral(prompt, path, value, fail);
  }
  return { prompt, outputNodeIds: resolveOutputNodeIds(template), seeds };
}

/** Folds a raw seed into the input's [min, max] (default 0..MAX_SEED). */
function pickSeed(spec: IntegerInputSpec, seedSource: () => number, fail: (message: string) => never): number {
  const raw = seedSource();
  if (!Number.isSafeInteger(raw) || raw < 0) {
    fail(`seedSource returned ${String(raw)}, not an integer in 0..${MAX_SEED}`);
  }
  const low = spec.min ?? 0;
  const high = Math.min(spec.max ?? MAX_SEED, MAX_SEED);
  return low + (raw % (high - low + 1));
}

function setLiteral(prompt: ApiPrompt, path: string, value: JsonValue, fail: (message: string) => never): void {
  const target = parseBindPath(path);
  const node = target && Object.hasOwn(prompt, target.nodeId) ? prompt[target.nodeId] : undefined;
  if (!target || !node || !Object.hasOwn(node.inputs, target.inputName)) {
    fail(`bind path "${path}" does not name an input of the graph (template not validated?)`);
    return;
  }
  node.inputs[target.inputName] = value;
}

// LoadImage resolves the name inside ComfyUI's input folder; anything that could climb out of it is refused.
function checkUploadedName(name: string): string | undefined {
  if (name === '' || name.length > 255) return 'must be 1..255 characters';
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x20 || code === 0x5c) return 'must not contain control characters or backslashes';
  }
  if (name.startsWith('/') || name.split('/').some((part) => part === '..' || part === '')) {
    return `must be a relative name without ".." segments, got ${JSON.stringify(name)}`;
  }
  return undefined;
}
