/** Steps assumed when a workflow has no `steps` input (a typical sampler setting). */
const DEFAULT_STEPS = 20;

/**
 * The class of like jobs a job's run time is learned and predicted for: its workflow, its size (in quarter
 * megapixels) and its sampler steps — e.g. `txt2img:1mp:20s`. Bounded: sizes and steps are validated ranges.
 */
export function runCostKeyOf(workflow: string, inputs: Readonly<Record<string, unknown>>): string {
  const width = positive(inputs.width);
  const height = positive(inputs.height);
  const megapixels = width && height ? Math.max(1, Math.round((width * height * 4) / 1024 ** 2)) / 4 : 1;
  const steps = Math.round(positive(inputs.steps) ?? DEFAULT_STEPS);
  return `${workflow}:${megapixels}mp:${Math.max(1, steps)}s`;
}

/**
 * The size of a class's work (megapixels × steps): a class never measured is predicted from its workflow's (or
 * every workflow's) measured time per unit of work. Diffusion time grows about linearly with both.
 */
export function workOf(costKey: string): number {
  const match = /:([\d.]+)mp:(\d+)s$/.exec(costKey);
  if (!match) return DEFAULT_STEPS;
  return Number(match[1]) * Number(match[2]);
}

export function workflowOf(costKey: string): string {
  return costKey.replace(/:[\d.]+mp:\d+s$/, '');
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
