import { formatTemplateProblem, type TemplateProblem } from './template-problem.util';

/** Start-up must stop on this: it names every bad template file and what is wrong in it. */
export class WorkflowLoadError extends Error {
  override readonly name = 'WorkflowLoadError';

  constructor(
    readonly dir: string,
    readonly problems: readonly TemplateProblem[],
  ) {
    super(
      `Cannot load workflow templates from ${dir}:\n${problems.map((p) => `  - ${formatTemplateProblem(p)}`).join('\n')}`,
    );
  }
}

/** A programming or data error while binding (e.g. a missing upload); never a client's input mistake. */
export class WorkflowBindError extends Error {
  override readonly name = 'WorkflowBindError';

  constructor(
    readonly workflow: string,
    message: string,
  ) {
    super(`workflow "${workflow}": ${message}`);
  }
}
