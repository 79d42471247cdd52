import { isLinkShaped, parseBindPath } from './bind-path.util';
import { checkScalarValue, describeValue } from './input-rules.util';
import { MAX_SEED } from './seed.util';
import type { TemplateGraph } from './template-graph.validator';
import { checkKnownKeys, childPath, isPlainObject, type JsonObject, type Report } from './template-problem.util';
import { RANDOM_SEED, WORKFLOW_INPUT_TYPES, type ScalarInputSpec, type WorkflowInputType } from './workflow.types';

// Starts with a letter, so no input can be called __proto__ and land on an object's prototype.
export const INPUT_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

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

/** Checks every input spec: type, fields, constraints, defaults, examples and bind targets in the graph. */
export function checkInputs(raw: unknown, graph: TemplateGraph, report: Report): void {
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
  graph: TemplateGraph,
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
  graph: TemplateGraph,
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
    if (!graph.usable) return;
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

function isInputType(value: string): value is WorkflowInputType {
  return (WORKFLOW_INPUT_TYPES as readonly string[]).includes(value);
}
