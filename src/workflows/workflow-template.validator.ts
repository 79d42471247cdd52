import { basename, extname } from 'node:path';
import { describeValue } from './input-rules.util';
import { checkOutput, checkPrompt } from './template-graph.validator';
import { checkInputs } from './template-inputs.validator';
import {
  checkKnownKeys,
  isPlainObject,
  type JsonObject,
  type Report,
  type TemplateProblem,
} from './template-problem.util';
import type { ApiPrompt, WorkflowInputSpec, WorkflowTemplate } from './workflow.types';

export { formatTemplateProblem, type TemplateProblem } from './template-problem.util';
export { resolveOutputNodeIds } from './template-graph.validator';
export { INPUT_NAME_PATTERN } from './template-inputs.validator';

export type TemplateValidationResult =
  | { readonly ok: true; readonly template: WorkflowTemplate }
  | { readonly ok: false; readonly problems: readonly TemplateProblem[] };

export const WORKFLOW_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const TOP_LEVEL_KEYS = ['name', 'description', 'inputs', 'output', 'prompt'];

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
    inputs: withoutAnnotations(raw.inputs as JsonObject) as Record<string, WorkflowInputSpec>,
    ...(raw.output === undefined ? {} : { output: { node: (raw.output as { node: string }).node } }),
    prompt: raw.prompt as ApiPrompt,
  };
  return { ok: true, template };
}

function checkName(name: unknown, file: string, report: Report): void {
  if (typeof name !== 'string' || !WORKFLOW_NAME_PATTERN.test(name)) {
    report('$.name', `must be a string matching ${String(WORKFLOW_NAME_PATTERN)}, got ${describeValue(name)}`);
    return;
  }
  const fileBase = basename(file, extname(file));
  if (name !== fileBase) report('$.name', `"${name}" must equal the file's base name "${fileBase}"`);
}

// "$comment"-style keys are for template authors; consumers iterate inputs and must see only specs.
function withoutAnnotations(inputs: JsonObject): JsonObject {
  return Object.fromEntries(
    Object.entries(inputs)
      .filter(([name]) => !name.startsWith('$'))
      .map(([name, spec]) => [
        name,
        Object.fromEntries(Object.entries(spec as JsonObject).filter(([key]) => !key.startsWith('$'))),
      ]),
  );
}
