import { parseBindPath } from './bind-path.util';
import type { WorkflowTemplate } from './workflow.types';

/**
 * Inputs that name a model file on the ComfyUI instance (checkpoints, diffusion models, text encoders, VAEs, LoRAs,
 * control nets, upscalers …): ComfyUI lists the files it has as the input's choices in /object_info, and refuses a
 * prompt naming another ("Value not in list"). `sampler_name` and LoadImage's `image` are choices too, but not
 * model files: they are the same everywhere, or uploaded per run.
 */
export const MODEL_INPUT_NAME =
  /^(?:ckpt|unet|clip|clip_vision|vae|lora|control_net|style_model|gligen|hypernetwork|upscale_model|model)_name\d*$/;

/** One model file the bound graph names: which node and input, and the file. */
export interface ModelRequirement {
  readonly nodeId: string;
  readonly classType: string;
  readonly input: string;
  readonly file: string;
}

/** What an instance needs to run a job: every node class of the graph and every model file it names. */
export interface WorkflowRequirements {
  readonly nodeClasses: readonly string[];
  readonly models: readonly ModelRequirement[];
  /**
   * The job's model set as one string (sorted file names joined by "|"), "" for a model-free graph: two jobs with
   * the same key run on an instance without loading anything new (model affinity).
   */
  readonly modelKey: string;
}

/**
 * The requirements of a template run with these inputs. Only literals matter (node classes are fixed by the
 * template; a model input may be bound from a user's string, e.g. txt2img's `checkpoint`), so images need not be
 * uploaded first: the API checks a job at submit and the gpu routes it before choosing where to upload.
 */
export function requirementsOf(
  template: WorkflowTemplate,
  values: Readonly<Record<string, unknown>>,
): WorkflowRequirements {
  const bound = new Map<string, string>();
  for (const [name, spec] of Object.entries(template.inputs)) {
    const value = values[name] ?? ('default' in spec ? spec.default : undefined);
    if (typeof value !== 'string') continue;
    for (const path of spec.bind) {
      const target = parseBindPath(path);
      if (target) bound.set(`${target.nodeId}.${target.inputName}`, value);
    }
  }
  const nodeClasses = new Set<string>();
  const models: ModelRequirement[] = [];
  for (const [nodeId, node] of Object.entries(template.prompt)) {
    nodeClasses.add(node.class_type);
    for (const [input, literal] of Object.entries(node.inputs)) {
      if (!MODEL_INPUT_NAME.test(input)) continue;
      const file = bound.get(`${nodeId}.${input}`) ?? literal;
      if (typeof file === 'string' && file !== '') models.push({ nodeId, classType: node.class_type, input, file });
    }
  }
  const modelKey = [...new Set(models.map((m) => m.file))].sort().join('|');
  return { nodeClasses: [...nodeClasses].sort(), models, modelKey };
}
