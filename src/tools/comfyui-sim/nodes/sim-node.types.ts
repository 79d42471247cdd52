import type { SimFileStore } from '../comfyui-sim-file.store';
import type {
  JsonObject,
  SimFileRef,
  SimImage,
  SimImageBatch,
  SimModelLists,
  SimPrompt,
  SimRuntimeConfig,
} from '../comfyui-sim.types';

/** `("INT", {"default": 0, ...})` or `(["a", "b"], {...})` as object_info shows it. */
export type InputSpec = readonly [type: string | readonly string[], options?: JsonObject];

export interface NodeInputTypes {
  required: Record<string, InputSpec>;
  optional?: Record<string, InputSpec>;
  hidden?: Record<string, string>;
}

/** What node definitions may look at outside their inputs: files (LoadImage choices) and model lists. */
export interface NodeEnv {
  files: SimFileStore;
  models: SimModelLists;
}

/** Handed to a running node: the executor's progress hook, interrupt checks and file access. */
export interface NodeRunContext {
  readonly promptId: string;
  readonly nodeId: string;
  readonly prompt: SimPrompt;
  readonly extraData: JsonObject;
  readonly env: NodeEnv;
  readonly config: Readonly<SimRuntimeConfig>;
  /** Random 5-letter suffix PreviewImage adds to its temp prefix (fixed per node for the server's lifetime). */
  readonly tempSuffix: string;
  /**
   * One sampler step: waits the step time (or the manual gate), then ComfyUI's progress hook: interrupt check,
   * progress_state, preview frame(s) and `progress`. `preview` is only called when previews are on.
   */
  step(value: number, max: number, preview?: (maxSize: number) => SimImage): Promise<void>;
  /** ComfyUI's throw_exception_if_processing_interrupted(). */
  checkInterrupt(): void;
}

export interface NodeResult {
  outputs: unknown[];
  ui?: { images: SimFileRef[] };
}

export interface SimNodeDef {
  name: string;
  displayName: string;
  description: string;
  category: string;
  pythonModule: string;
  outputNode: boolean;
  inputTypes(env: NodeEnv): NodeInputTypes;
  returnTypes: string[];
  returnNames?: string[];
  outputTooltips?: string[];
  /** Inputs naming a model file this loader brings onto the GPU (the model-switch delay is paid on them). */
  modelInputs?: string[];
  /** VALIDATE_INPUTS: the inputs it takes skip the generic min/max/combo checks, as in ComfyUI. */
  validateInputs?: { names: string[]; check(values: JsonObject, env: NodeEnv): true | string };
  /** IS_CHANGED: folded into the cache signature (LoadImage hashes its file). */
  isChanged?(inputs: JsonObject, env: NodeEnv): string;
  run(ctx: NodeRunContext, inputs: Record<string, unknown>): Promise<NodeResult>;
}

/** The stand-ins the simulator passes along links. */
export interface SimModel {
  kind: 'model';
  name: string;
  patches: string[];
}

export interface SimClip {
  kind: 'clip';
  name: string;
}

export interface SimVae {
  kind: 'vae';
  name: string;
}

export interface SimConditioning {
  kind: 'conditioning';
  text: string;
  images: SimImageBatch;
}

/** Latents carry pixel-space frames in the simulator: `frames` is set once something (VAEEncode, a sampler) filled them. */
export interface SimLatent {
  kind: 'latent';
  width: number;
  height: number;
  batch: number;
  frames: SimImageBatch | null;
}
