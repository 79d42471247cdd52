import type { WorkflowRequirements } from '../../workflows';
import type { InstanceCapabilities } from './instance-capabilities';

export type MissingCapability =
  | { readonly kind: 'node'; readonly classType: string }
  | {
      readonly kind: 'model';
      readonly nodeId: string;
      readonly classType: string;
      readonly input: string;
      readonly file: string;
    };

/**
 * What an instance lacks to run a job: node classes it does not have, and model files its loaders do not list.
 * A model input the instance does not describe as a list of files cannot be judged and is not held against it.
 */
export function missingOn(requirements: WorkflowRequirements, caps: InstanceCapabilities): MissingCapability[] {
  const classes = new Set(caps.nodeClasses);
  const missing: MissingCapability[] = requirements.nodeClasses
    .filter((classType) => !classes.has(classType))
    .map((classType) => ({ kind: 'node', classType }));
  for (const model of requirements.models) {
    if (!classes.has(model.classType)) continue;
    const accepted = caps.models[model.classType]?.[model.input];
    if (accepted && !accepted.includes(model.file)) missing.push({ kind: 'model', ...model });
  }
  return missing;
}

export function canRun(requirements: WorkflowRequirements, caps: InstanceCapabilities): boolean {
  return missingOn(requirements, caps).length === 0;
}

/** `node class "Foo"` / `model "x.safetensors" (CheckpointLoaderSimple.ckpt_name, node 4)`. */
export function describeMissing(missing: MissingCapability): string {
  return missing.kind === 'node'
    ? `node class "${missing.classType}"`
    : `model "${missing.file}" (${missing.classType}.${missing.input}, node ${missing.nodeId})`;
}
