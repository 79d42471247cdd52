import { basename, extname } from 'node:path';
import { isLinkShaped, isValidLink, parseBindPath } from './bind-path.util';
import { checkScalarValue, describeValue } from './input-rules.util';
import { MAX_SEED } from './seed.util';
import {
  RANDOM_SEED,
  WORKFLOW_INPUT_TYPES,
  type ApiNode,
  type ApiPrompt,
  type JsonValue,
  type ScalarInputSpec,
  type WorkflowInputSpec,
  type WorkflowInputType,
  type WorkflowTemplate,
} from './workflow.types';

export interface TemplateProblem {
  /** The template file as the loader was given it. */
  readonly file: string;
  /** JSON path inside the file, e.g. `$.inputs.width.bind[0]`. */
  readonly path: string;
  readonly message: string;
}

export type TemplateValidationResult =
  | { readonly ok: true; readonly template: WorkflowTemplate }
  | { readonly ok: false; readonly problems: readonly TemplateProblem[] };

export const WORKFLOW_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const INPUT_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function formatTemplateProblem(problem: TemplateProblem): string {
  return `${problem.file}: ${problem.path}: ${problem.message}`;
}

type JsonObject = Record<string, unknown>;
type Report = (path: string, message: string) => void;

const TOP_LEVEL_KEYS = ['name', 'description', 'inputs', 'output', 'prompt'];
const OUTPUT_KEYS = ['node'];
const COMMON_INPUT_KEYS = ['type', 'required', 'default', 'bind', 'description'];
const TYPE_INPUT_KEYS: Record<WorkflowInputType, readonly string[]> = {
  string: ['minLength', 'maxLength', 'pattern', 'enum', 'examples'],
  integer: ['min', 'max', 'multipleOf', 'examples'],
  number: ['min', 'max', 'examples'],
  boolean: [],
  image: ['maxBytes'],
};
// What a bound literal must already be in the graph: a type mismatch means the bind path points at the wrong input.
const LITERAL_TYPE: Record<WorkflowInputType, 'string' | 'number' | 'boolean'> = {
  string: 'string',
  integer: 'number',
  number: 'number',
  boolean: 'boolean',
  image: 'string',
};
const IMAGE_OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage']);

/**
 * Validates one parsed template file. `file` names it in every problem; its base name must equal `name`.
 * Collects every problem instead of stopping at the first, so one start-up attempt shows all of them.
 */
export function validateWorkflowTemplate(raw: unknown, file: string): TemplateValidationResult {
  const problems: TemplateProblem[] = [];
  const report: Report = (path, message) => problems.push({ file, path, message });

  if (!isPlainObject(raw)) {
    report('$', `must be a JSON object, got ${describeValue(raw)}`);
    return { ok: false, problems };
  }
  checkKnownKeys(raw, TOP_LEVEL_KEYS, '$', report);
  checkName(raw.name, file, report);
  if (typeof raw.description !== 'string' || raw.description.trim() === '') {
    report('$.description', 'must be a non-empty string');
  }
  const graph = checkPrompt(raw.prompt, report);
  checkOutput(raw.output, graph, report);
  checkInputs(raw.inputs, graph, report);

  if (problems.length > 0) return { ok: false, problems };
  const template: WorkflowTemplate = {
    name: raw.name as string,
    description: raw.description as string,
    inputs: raw.inputs as Record<string, WorkflowInputSpec>,
    ...(raw.output === undefined ? {} : { output: raw.output as { node: string } }),
    prompt: raw.prompt as ApiPrompt,
  };
  return { ok: true, template };
}

/** Node ids of the outputs: `output.node`, or every SaveImage in the graph's key order. */
export function resolveOutputNodeIds(template: Pick<WorkflowTemplate, 'output' | 'prompt'>): string[] {
  if (template.output) return [template.output.node];
  return Object.entries(template.prompt)
    .filter(([, node]) => node.class_type === 'SaveImage')
    .map(([id]) => id);
}

interface Graph {
  /** Every node id present, well-formed or not (links and `output.node` may name any of them). */
  readonly ids: ReadonlySet<string>;
  /** Nodes with a class_type and an inputs object: the ones binds and output checks can inspect. */
  readonly nodes: ReadonlyMap<string, ApiNode>;
}

function checkName(name: unknown, file: string, report: Report): void {
  if (typeof name !== 'string' || !WORKFLOW_NAME_PATTERN.test(name)) {
    report('$.name', `must be a string matching ${String(WORKFLOW_NAME_PATTERN)}, got ${describeValue(name)}`);
    return;
  }
  const fileBase = basename(file, extname(file));
  if (name !== fileBase) report('$.name', `"${name}" must equal the file's base name "${fileBase}"`);
}

function checkPrompt(raw: unknown, report: Report): Graph {
  const ids = new Set<string>();
  const nodes = new Map<string, ApiNode>();
  if (!isPlainObject(raw)) {
    report('$.prompt', `must be a ComfyUI API-format graph (node id → { class_type, inputs }), got ${describeValue(raw)}`);
    return { ids, nodes };
  }
  if (Array.isArray(raw.nodes) && Array.isArray(raw.links)) {
    report('$.prompt', 'looks like a UI workflow ("Save"); export it with "Save (API)" instead');
    return { ids, nodes };
  }
  const entries = Object.entries(raw);
  if (entries.length === 0) report('$.prompt', 'has no nodes');
  for (const [id] of entries) ids.add(id);

  for (const [id, node] of entries) {
    const nodePath = childPath('$.prompt', id);
    if (!isPlainObject(node)) {
      report(nodePath, `must be a node object, got ${describeValue(node)}`);
      continue;
    }
    const classOk = typeof node.class_type === 'string' && node.class_type.trim() !== '';
    if (!classOk) report(`${nodePath}.class_type`, 'must be a non-empty string (the ComfyUI node class)');
    if (node._meta !== undefined && !isPlainObject(node._meta)) report(`${nodePath}._meta`, 'must be an object');
    if (!isPlainObject(node.inputs)) {
      report(`${nodePath}.inputs`, `must be an object, got ${describeValue(node.inputs)}`);
      continue;
    }
    for (const [inputName, value] of Object.entries(node.inputs as Record<string, JsonValue>)) {
      if (!isLinkShaped(value)) continue;
      const valuePath = childPath(`${nodePath}.inputs`, inputName);
      if (!isValidLink(value)) {
        report(valuePath, 'an array input is a link and must be ["<nodeId>", <outputIndex ≥ 0>]');
      } else if (!ids.has(value[0])) {
        report(valuePath, `links to node "${value[0]}", which does not exist`);
      }
    }
    if (classOk) nodes.set(id, node as unknown as ApiNode);
  }
  return { ids, nodes };
}

function checkOutput(raw: unknown, graph: Graph, report: Report): void {
  if (raw === undefined) {
    const hasSaveImage = [...graph.nodes.values()].some((node) => node.class_type === 'SaveImage');
    if (graph.nodes.size > 0 && !hasSaveImage) {
      report('$.output', 'is absent and the graph has no SaveImage node; add one or name the output node');
    }
    return;
  }
  if (!isPlainObject(raw)) {
    report('$.output', `must be an object { "node": "<nodeId>" }, got ${describeValue(raw)}`);
    return;
  }
  checkKnownKeys(raw, OUTPUT_KEYS, '$.output', report);
  const nodeId = raw.node;
  if (typeof nodeId !== 'string' || nodeId === '') {
    report('$.output.node', `must be a node id string, got ${describeValue(nodeId)}`);
    return;
  }
  if (!graph.ids.has(nodeId)) {
    report('$.output.node', `node "${nodeId}" does not exist in prompt`);
    return;
  }
  const node = graph.nodes.get(nodeId);
  if (node && !isImageOutputNode(node)) {
    report(
      '$.output.node',
      `node "${nodeId}" (${node.class_type}) is not an image output node ` +
        '(SaveImage, PreviewImage, or a node with an "images" link input)',
    );
  }
}

// Custom save nodes ("Image Save", websocket savers) follow SaveImage's convention of an `images` link input.
function isImageOutputNode(node: ApiNode): boolean {
  if (IMAGE_OUTPUT_CLASSES.has(node.class_type)) return true;
  const images = node.inputs.images;
  return isLinkShaped(images) && isValidLink(images);
}

function checkInputs(raw: unknown, graph: Graph, report: Report): void {
  if (!isPlainObject(raw)) {
    report('$.inputs', `must be an object of input specs (use {} for none), got ${describeValue(raw)}`);
    return;
  }
  const boundBy = new Map<string, string>();
  for (const [name, spec] of Object.entries(raw)) {
    const path = childPath('$.inputs', name);
    if (name.startsWith('$')) continue;
    if (!INPUT_NAME_PATTERN.test(name)) {
      report(path, `input name must match ${String(INPUT_NAME_PATTERN)}`);
      continue;
    }
    if (!isPlainObject(spec)) {
      report(path, `must be an input spec object, got ${describeValue(spec)}`);
      continue;
    }
    checkInputSpec(name, spec, path, graph, boundBy, report);
  }
}

function checkInputSpec(
  name: string,
  spec: JsonObject,
  path: string,
  graph: Graph,
  boundBy: Map<string, string>,
  report: Report,
): void {
  const type = spec.type;
  if (typeof type !== 'string' || !isInputType(type)) {
    report(`${path}.type`, `must be one of ${WORKFLOW_INPUT_TYPES.join(', ')}, got ${describeValue(type)}`);
    return;
  }
  let problemCount = 0;
  const count: Report = (p, m) => {
    problemCount++;
    report(p, m);
  };
  checkKnownKeys(spec, [...COMMON_INPUT_KEYS, ...TYPE_INPUT_KEYS[type]], path, count, `a ${type} input`);
  if (spec.required !== undefined && typeof spec.required !== 'boolean') count(`${path}.required`, 'must be a boolean');
  if (spec.description !== undefined && typeof spec.description !== 'string') {
    count(`${path}.description`, 'must be a string');
  }
  if (spec.required === true && spec.default !== undefined) {
    count(`${path}.default`, 'a required input cannot have a default');
  }
  checkConstraintFields(type, spec, path, count);
  checkBinds(name, type, spec, path, graph, boundBy, count);
  if (problemCount === 0 && type !== 'image') checkDefaultAndExamples(spec as unknown as ScalarInputSpec, path, report);
}

function checkConstraintFields(type: WorkflowInputType, spec: JsonObject, path: string, report: Report): void {
  switch (type) {
    case 'image':
      if (spec.required !== true) {
        report(
          `${path}.required`,
          'image inputs must be required: an absent image would leave LoadImage naming a file the server lacks',
        );
      }
      if (spec.default !== undefined) report(`${path}.default`, 'image inputs cannot have a default');
      checkInteger(spec.maxBytes, `${path}.maxBytes`, 1, report);
      return;
    case 'string':
      checkInteger(spec.minLength, `${path}.minLength`, 0, report);
      checkInteger(spec.maxLength, `${path}.maxLength`, 1, report);
      checkOrdered(spec, 'minLength', 'maxLength', path, report);
      checkPattern(spec.pattern, `${path}.pattern`, report);
      checkEnum(spec.enum, `${path}.enum`, report);
      return;
    case 'integer':
      for (const key of ['min', 'max'] as const) checkInteger(spec[key], `${path}.${key}`, undefined, report);
      checkInteger(spec.multipleOf, `${path}.multipleOf`, 1, report);
      checkOrdered(spec, 'min', 'max', path, report);
      if (spec.default === RANDOM_SEED) checkRandomSeedSpec(spec, path, report);
      return;
    case 'number':
      for (const key of ['min', 'max'] as const) {
        const value = spec[key];
        if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
          report(`${path}.${key}`, `must be a finite number, got ${describeValue(value)}`);
        }
      }
      checkOrdered(spec, 'min', 'max', path, report);
      return;
    case 'boolean':
      return;
  }
}

// Random seeds are drawn from 0..MAX_SEED and folded into [min, max]; a step would make that fold lossy.
function checkRandomSeedSpec(spec: JsonObject, path: string, report: Report): void {
  if (spec.multipleOf !== undefined) report(`${path}.multipleOf`, `cannot be combined with default "${RANDOM_SEED}"`);
  if (typeof spec.min === 'number' && spec.min < 0) {
    report(`${path}.min`, `must be ≥ 0 with default "${RANDOM_SEED}" (seeds are 0..${MAX_SEED})`);
  }
}

function checkDefaultAndExamples(spec: ScalarInputSpec, path: string, report: Report): void {
  if (spec.default !== undefined && !(spec.type === 'integer' && spec.default === RANDOM_SEED)) {
    const problem = checkScalarValue(spec, spec.default);
    if (problem) report(`${path}.default`, problem);
  }
  if (!('examples' in spec) || spec.examples === undefined) return;
  const examples: unknown = spec.examples;
  if (!Array.isArray(examples)) {
    report(`${path}.examples`, 'must be an array');
    return;
  }
  examples.forEach((example: unknown, index) => {
    const problem = checkScalarValue(spec, example);
    if (problem) report(`${path}.examples[${index}]`, problem);
  });
}

function checkBinds(
  name: string,
  type: WorkflowInputType,
  spec: JsonObject,
  path: string,
  graph: Graph,
  boundBy: Map<string, string>,
  report: Report,
): void {
  const bind = spec.bind;
  if (!Array.isArray(bind)) {
    report(`${path}.bind`, 'must be an array of "<nodeId>.inputs.<inputName>" paths ([] binds nowhere)');
    return;
  }
  bind.forEach((entry: unknown, index) => {
    const bindPath = `${path}.bind[${index}]`;
    const target = typeof entry === 'string' ? parseBindPath(entry) : undefined;
    if (typeof entry !== 'string' || !target) {
      report(bindPath, `must be "<nodeId>.inputs.<inputName>", got ${describeValue(entry)}`);
      return;
    }
    if (!graph.ids.has(target.nodeId)) {
      report(bindPath, `node "${target.nodeId}" does not exist in prompt`);
      return;
    }
    const node = graph.nodes.get(target.nodeId);
    if (!node) return; // malformed node: already reported under $.prompt
    if (!Object.hasOwn(node.inputs, target.inputName)) {
      const known = Object.keys(node.inputs).join(', ') || 'none';
      report(
        bindPath,
        `node "${target.nodeId}" (${node.class_type}) has no input "${target.inputName}"; its inputs: ${known}`,
      );
      return;
    }
    const literal = node.inputs[target.inputName];
    if (isLinkShaped(literal)) {
      report(bindPath, `"${entry}" is a link to another node; only literal inputs can be bound`);
      return;
    }
    const expected = LITERAL_TYPE[type];
    if (typeof literal !== expected) {
      report(bindPath, `a ${type} input cannot replace the ${describeValue(literal)} at "${entry}"`);
      return;
    }
    // A free-text value here would choose where the server writes files.
    if (target.inputName === 'filename_prefix' && !(type === 'string' && Array.isArray(spec.enum))) {
      report(bindPath, 'filename_prefix is an output path; only a string input with an enum may be bound to it');
      return;
    }
    const key = `${target.nodeId}.inputs.${target.inputName}`;
    const previous = boundBy.get(key);
    if (previous !== undefined) {
      report(bindPath, `"${key}" is already bound by input "${previous}"`);
      return;
    }
    boundBy.set(key, name);
  });
}

function checkInteger(value: unknown, path: string, min: number | undefined, report: Report): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    report(path, `must be an integer, got ${describeValue(value)}`);
  } else if (min !== undefined && value < min) {
    report(path, `must be at least ${min}, got ${value}`);
  }
}

function checkOrdered(spec: JsonObject, lowKey: string, highKey: string, path: string, report: Report): void {
  const low = spec[lowKey];
  const high = spec[highKey];
  if (typeof low === 'number' && typeof high === 'number' && low > high) {
    report(`${path}.${lowKey}`, `must not exceed ${highKey} (${low} > ${high})`);
  }
}

function checkPattern(value: unknown, path: string, report: Report): void {
  if (value === undefined) return;
  if (typeof value !== 'string') {
    report(path, `must be a regular expression string, got ${describeValue(value)}`);
    return;
  }
  try {
    new RegExp(value, 'u');
  } catch (error: unknown) {
    report(path, `is not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function checkEnum(value: unknown, path: string, report: Report): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
    report(path, 'must be a non-empty array of strings');
  } else if (new Set(value).size !== value.length) {
    report(path, 'must not repeat values');
  }
}

function checkKnownKeys(
  object: JsonObject,
  allowed: readonly string[],
  path: string,
  report: Report,
  what = 'this object',
): void {
  for (const key of Object.keys(object)) {
    if (key.startsWith('$') || allowed.includes(key)) continue;
    report(childPath(path, key), `unknown field for ${what} (allowed: ${allowed.join(', ')})`);
  }
}

function isInputType(value: string): value is WorkflowInputType {
  return (WORKFLOW_INPUT_TYPES as readonly string[]).includes(value);
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function childPath(parent: string, key: string): string {
  return /^[A-Za-z0-9_$-]+$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}
