import { isLinkShaped, parseBindPath } from './bind-path.util';
import { checkScalarValue, describeValue } from './input-rules.util';
import { MAX_SEED } from './seed.util';
import type { TemplateGraph } from './template-graph.validator';
import { childPath, type JsonObject, type Report } from './template-problem.util';
import { RANDOM_SEED, type ScalarInputSpec, type WorkflowInputSpec, type WorkflowInputType } from './workflow.types';

// What a bound literal must already be in the graph: a type mismatch means the bind path points at the wrong input.
const LITERAL_TYPE: Record<WorkflowInputType, 'string' | 'number' | 'boolean'> = {
  string: 'string',
  integer: 'number',
  number: 'number',
  boolean: 'boolean',
  image: 'string',
};

/**
 * What the file schema cannot check of the input specs it found well-formed: bind targets in the graph, min ≤ max,
 * the rules of "random" seeds, and defaults and examples against the input's own value schema.
 */
export function checkInputs(
  inputs: JsonObject,
  graph: TemplateGraph,
  wellFormed: (name: string) => boolean,
  report: Report,
): void {
  const boundBy = new Map<string, string>();
  for (const [name, raw] of Object.entries(inputs)) {
    if (name.startsWith('$') || !wellFormed(name)) continue;
    const spec = raw as WorkflowInputSpec;
    const path = childPath('$.inputs', name);
    let problems = 0;
    const count: Report = (p, m) => {
      problems++;
      report(p, m);
    };
    checkBinds(name, spec, path, graph, boundBy, count);
    if (spec.type === 'image') continue;
    checkOrdered(spec, path, count);
    if (spec.type === 'integer' && spec.default === RANDOM_SEED) checkRandomSeedSpec(spec, path, count);
    if (problems === 0) checkDefaultAndExamples(spec, path, report);
  }
}

function checkOrdered(spec: ScalarInputSpec, path: string, report: Report): void {
  const pairs: [string, string][] = [
    ['min', 'max'],
    ['minLength', 'maxLength'],
  ];
  for (const [lowKey, highKey] of pairs) {
    const low = (spec as unknown as Record<string, unknown>)[lowKey];
    const high = (spec as unknown as Record<string, unknown>)[highKey];
    if (typeof low === 'number' && typeof high === 'number' && low > high) {
      report(`${path}.${lowKey}`, `must not exceed ${highKey} (${low} > ${high})`);
    }
  }
}

// Random seeds are drawn from 0..MAX_SEED and folded into [min, max]; a step would make that fold lossy.
function checkRandomSeedSpec(spec: Extract<ScalarInputSpec, { type: 'integer' }>, path: string, report: Report): void {
  if (spec.multipleOf !== undefined) report(`${path}.multipleOf`, `cannot be combined with default "${RANDOM_SEED}"`);
  if (spec.min !== undefined && spec.min < 0) {
    report(`${path}.min`, `must be ≥ 0 with default "${RANDOM_SEED}" (seeds are 0..${MAX_SEED})`);
  }
}

function checkDefaultAndExamples(spec: ScalarInputSpec, path: string, report: Report): void {
  if (spec.default !== undefined && !(spec.type === 'integer' && spec.default === RANDOM_SEED)) {
    const problem = checkScalarValue(spec, spec.default);
    if (problem) report(`${path}.default`, problem);
  }
  const examples: unknown = 'examples' in spec ? spec.examples : undefined;
  if (!Array.isArray(examples)) return;
  examples.forEach((example: unknown, index) => {
    const problem = checkScalarValue(spec, example);
    if (problem) report(`${path}.examples[${index}]`, problem);
  });
}

function checkBinds(
  name: string,
  spec: WorkflowInputSpec,
  path: string,
  graph: TemplateGraph,
  boundBy: Map<string, string>,
  report: Report,
): void {
  spec.bind.forEach((entry, index) => {
    const bindPath = `${path}.bind[${index}]`;
    const target = parseBindPath(entry);
    if (!target) {
      report(bindPath, `must be "<nodeId>.inputs.<inputName>", got ${describeValue(entry)}`);
      return;
    }
    if (!graph.usable) return;
    const node = graph.nodes.get(target.nodeId);
    if (!node) {
      report(bindPath, `node "${target.nodeId}" does not exist in prompt`);
      return;
    }
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
    const expected = LITERAL_TYPE[spec.type];
    if (typeof literal !== expected) {
      report(bindPath, `a ${spec.type} input cannot replace the ${describeValue(literal)} at "${entry}"`);
      return;
    }
    // A free-text value here would choose where the server writes files.
    if (target.inputName === 'filename_prefix' && !(spec.type === 'string' && spec.enum !== undefined)) {
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
