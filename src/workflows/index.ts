export * from './workflow.types';
export * from './workflow.errors';
export { WorkflowCatalog } from './workflow-catalog';
export {
  validateWorkflowTemplate,
  resolveOutputNodeIds,
  formatTemplateProblem,
  type TemplateProblem,
  type TemplateValidationResult,
} from './workflow-template.validator';
export {
  validateInputs,
  validateInputsWithFiles,
  type InputError,
  type InputLimits,
  type InputValidationResult,
  type ValidateInputsOptions,
} from './workflow-inputs.validator';
export { bindWorkflow, type BindOptions } from './workflow-binder';
export { MAX_SEED, randomSeed, deterministicSeedSource } from './seed.util';
export { imageFromBase64, imageFromBytes, sniffImageMime } from './image-data.util';
export {
  MODEL_INPUT_NAME,
  requirementsOf,
  type ModelRequirement,
  type WorkflowRequirements,
} from './workflow-requirements';
