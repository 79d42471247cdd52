/**
 * Workflow templates: one JSON file per workflow in WORKFLOWS_DIR (see workflows/README.md).
 *
 * File shape:
 *   { name, description, inputs: { <inputName>: InputSpec }, output?: { node }, prompt: <ComfyUI API graph> }
 *
 * Input spec fields (contract from ARCHITECTURE.md, plus the optional extras marked "extra"):
 *   type         string | integer | number | boolean | image
 *   bind         ["<nodeId>.inputs.<inputName>", ...] — every literal the value is written to. An empty array
 *                is allowed and deliberate: the input is accepted and validated but never reaches the graph
 *                (echo-invert uses it to take the same `prompt` as txt2img without turning text into a path).
 *   required     default false; an absent optional input takes `default`, or keeps the graph's literal.
 *   default      a value of the input's type; integers may use "random" (a fresh seed per run, see binder).
 *   min, max     integer/number bounds, inclusive.
 *   multipleOf   (extra) integer step, e.g. 8 for latent sizes that ComfyUI would silently floor.
 *   minLength, maxLength  (extra: minLength) string length in Unicode code points.
 *   pattern      (extra) string regex, always matched against the WHOLE value (wrapped in ^(?:…)$, flag u).
 *   enum         (extra) the only strings accepted.
 *   maxBytes     (extra) image size limit, tighter than the service-wide limit.
 *   description, examples  (extra) documentation surfaced by the /v1/workflows listing.
 * Keys starting with "$" (e.g. "$comment") are ignored everywhere, so templates can carry notes.
 */

export const WORKFLOW_INPUT_TYPES = ['string', 'integer', 'number', 'boolean', 'image'] as const;
export type WorkflowInputType = (typeof WORKFLOW_INPUT_TYPES)[number];

/** Marker default (and, where the template allows it, input value) meaning "pick a seed at bind time". */
export const RANDOM_SEED = 'random';
export type RandomSeed = typeof RANDOM_SEED;

interface InputSpecBase {
  readonly required?: boolean;
  readonly bind: readonly string[];
  readonly description?: string;
}

export interface StringInputSpec extends InputSpecBase {
  readonly type: 'string';
  readonly default?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly string[];
  readonly examples?: readonly string[];
}

export interface IntegerInputSpec extends InputSpecBase {
  readonly type: 'integer';
  readonly default?: number | RandomSeed;
  readonly min?: number;
  readonly max?: number;
  readonly multipleOf?: number;
  readonly examples?: readonly number[];
}

export interface NumberInputSpec extends InputSpecBase {
  readonly type: 'number';
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
  readonly examples?: readonly number[];
}

export interface BooleanInputSpec extends InputSpecBase {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** Images are always required: an absent image would leave LoadImage naming a file the server lacks. */
export interface ImageInputSpec extends InputSpecBase {
  readonly type: 'image';
  readonly required: true;
  readonly maxBytes?: number;
}

export type ScalarInputSpec = StringInputSpec | IntegerInputSpec | NumberInputSpec | BooleanInputSpec;
export type WorkflowInputSpec = ScalarInputSpec | ImageInputSpec;

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A link in an API-format graph: [source node id, output index]. */
export type NodeLink = readonly [nodeId: string, outputIndex: number];

export interface ApiNode {
  class_type: string;
  inputs: Record<string, JsonValue>;
  _meta?: Record<string, JsonValue>;
}

/** ComfyUI API-format prompt ("Save (API)" export): node id → node. */
export type ApiPrompt = Record<string, ApiNode>;

export interface WorkflowOutputSpec {
  readonly node: string;
}

export interface WorkflowTemplate {
  readonly name: string;
  readonly description: string;
  readonly inputs: Readonly<Record<string, WorkflowInputSpec>>;
  /** Absent: every SaveImage node of the graph is an output. */
  readonly output?: WorkflowOutputSpec;
  readonly prompt: Readonly<ApiPrompt>;
}

export const IMAGE_MIME_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type ImageMime = (typeof IMAGE_MIME_TYPES)[number];

/** A decoded, sniffed image input; `bytes` are uploaded to the chosen ComfyUI instance before binding. */
export interface ImageValue {
  readonly kind: 'image';
  readonly bytes: Buffer;
  readonly mime: ImageMime;
  readonly size: number;
}

/**
 * Validated inputs: defaults applied, types exact. An integer may still be "random"; the binder resolves it,
 * so this record stays deterministic for the same request and can go into job.requested as is (images aside).
 */
export type WorkflowInputValue = string | number | boolean | ImageValue;
export type WorkflowInputValues = Record<string, WorkflowInputValue>;

export interface BoundWorkflow {
  /** Deep copy of the template graph with every bind path set; ready for POST /prompt. */
  readonly prompt: ApiPrompt;
  /** Nodes whose `images` are the job's result, in template order. */
  readonly outputNodeIds: readonly string[];
  /** Seeds picked for "random" inputs (input name → seed), to report with the job. */
  readonly seeds: Readonly<Record<string, number>>;
}

/** One input as shown by GET /v1/workflows; bind paths stay internal. */
export interface WorkflowInputSummary {
  readonly name: string;
  readonly type: WorkflowInputType;
  readonly required: boolean;
  readonly default?: string | number | boolean;
  readonly description?: string;
  readonly min?: number;
  readonly max?: number;
  readonly multipleOf?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly string[];
  readonly maxBytes?: number;
  readonly examples?: readonly (string | number)[];
}

export interface WorkflowSummary {
  readonly name: string;
  readonly description: string;
  readonly inputs: readonly WorkflowInputSummary[];
}
