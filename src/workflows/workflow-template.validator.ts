import { basename, extname } from 'node:path';
import { compileSchema } from '../common/schema/schema-validator';
import { checkLinks, checkOutput, readGraph } from './template-graph.validator';
import { checkInputs } from './template-inputs.validator';
import { childPath, isPlainObject, type JsonObject, type Report, type TemplateProblem } from './template-problem.util';
import { WorkflowTemplateFileSchema } from './workflow-template.schema';
import type { ApiPrompt, WorkflowInputSpec, WorkflowTemplate } from './workflow.types';

export { formatTemplateProblem, type TemplateProblem } from './template-problem.util';
export { resolveOutputNodeIds } from './template-graph.validator';
export { INPUT_NAME_PATTERN, WORKFLOW_NAME_PATTERN } from './workflow-template.schema';

export type TemplateValidationResult =
  | { readonly ok: true; readonly template: WorkflowTemplate }
  | { readonly ok: false; readonly problems: readonly TemplateProblem[] };

const fileCheck = compileSchema(WorkflowTemplateFileSchema, { every: true });

/**
 * Validates one parsed template file: first against the file format's schema (workflow-template.schema.ts), then
 * what only the whole file can tell — its name against the file's, and references into the graph — for the parts
 * the schema found well-formed. `file` names it in every problem; every problem is collected, so one start-up
 * attempt shows all of them.
 */
export function validateWorkflowTemplate(raw: unknown, file: string): TemplateValidationResult {
  const problems: TemplateProblem[] = [];
  const report: Report = (path, message) => problems.push({ file, path, message });

  // A UI export ("Save") is no API graph: one line saying so, not every way its shape differs.
  const prompt = isPlainObject(raw) ? raw.prompt : undefined;
  const uiExport = isPlainObject(prompt) && Array.isArray(prompt.nodes) && Array.isArray(prompt.links);
  const structural = fileCheck.problems(raw).filter((p) => !(uiExport && p.path[0] === 'prompt'));
  for (const problem of structural) report(jsonPath(raw, problem.path), problem.message);
  if (uiExport) report('$.prompt', 'looks like a UI workflow ("Save"); export it with "Save (API)" instead');
  if (!isPlainObject(raw)) return { ok: false, problems };
  const wellFormed = (...at: string[]) => !structural.some((p) => at.every((segment, i) => p.path[i] === segment));

  if (wellFormed('name') && typeof raw.name === 'string') checkFileName(raw.name, file, report);
  // The prompt is usable when it is a non-empty object; a malformed node only keeps itself out of the checks.
  const promptUsable = !uiExport && !structural.some((p) => p.path.length === 1 && p.path[0] === 'prompt');
  const graph = readGraph(raw.prompt, promptUsable, (id) => wellFormed('prompt', id));
  checkLinks(graph, report);
  if (wellFormed('output')) checkOutput(raw.output as { node: string } | undefined, graph, report);
  if (isPlainObject(raw.inputs)) checkInputs(raw.inputs, graph, (name) => wellFormed('inputs', name), report);

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

function checkFileName(name: string, file: string, report: Report): void {
  const fileBase = basename(file, extname(file));
  if (name !== fileBase) report('$.name', `"${name}" must equal the file's base name "${fileBase}"`);
}

/** A schema problem's path as the file's JSON path: `$.inputs.width.bind[0]`, `$.prompt["a.b"]`. */
function jsonPath(raw: unknown, segments: readonly string[]): string {
  let path = '$';
  let at: unknown = raw;
  for (const segment of segments) {
    path = Array.isArray(at) ? `${path}[${segment}]` : childPath(path, segment);
    at = isPlainObject(at) || Array.isArray(at) ? (at as Record<string, unknown>)[segment] : undefined;
  }
  return path;
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
