import { imageFromBase64, imageFromBytes, type ImageParseResult } from './image-data.util';
import type { SchemaProblem } from '../common/schema/schema-validator';
import { describeValue } from './input-rules.util';
import { inputSetProblems } from './input-value.schema';
import {
  RANDOM_SEED,
  type ScalarInputSpec,
  type WorkflowInputSpec,
  type WorkflowInputValue,
  type WorkflowInputValues,
  type WorkflowTemplate,
} from './workflow.types';

export interface InputLimits {
  /** Service-wide image limit; a template's `maxBytes` can only tighten it. */
  readonly maxImageBytes: number;
  /** Service-wide string limit; a template's `maxLength` can only tighten it. */
  readonly maxStringLength?: number;
}

export interface ValidateInputsOptions {
  /**
   * Parse strings for integer/number/boolean inputs ("12", "7.5", "yes"). For text channels such as Telegram
   * /settings, where everything is a string. JSON callers leave it off: "12" for an integer is their bug.
   */
  readonly coerceStrings?: boolean;
}

export interface InputError {
  /** `inputs.<name>`, or `inputs` when the whole object is wrong. */
  readonly field: string;
  readonly message: string;
}

export type InputValidationResult =
  | { readonly ok: true; readonly values: WorkflowInputValues }
  | { readonly ok: false; readonly errors: readonly InputError[] };

/**
 * Validates a request's `inputs` against a template: unknown names, required, exact types, bounds, enum, pattern,
 * and images (base64 or data: URL, size-limited, magic bytes sniffed). Returns every error, each naming its field.
 * On success, defaults are applied; "random" seeds stay "random" for the binder to resolve (see bindWorkflow).
 */
export function validateInputs(
  template: WorkflowTemplate,
  rawInputs: unknown,
  limits: InputLimits,
  options: ValidateInputsOptions = {},
): InputValidationResult {
  if (rawInputs !== undefined && rawInputs !== null && !isPlainObject(rawInputs)) {
    return { ok: false, errors: [{ field: 'inputs', message: `must be an object, got ${describeValue(rawInputs)}` }] };
  }
  return validateRecord(template, rawInputs ?? {}, {}, limits, options);
}

/**
 * The multipart/Telegram variant: images arrive as decoded bytes keyed by input name, the other inputs as
 * usual. An image given both ways, or a file for a non-image input, is an error on that field.
 */
export function validateInputsWithFiles(
  template: WorkflowTemplate,
  rawInputs: unknown,
  files: Readonly<Record<string, Uint8Array>>,
  limits: InputLimits,
  options: ValidateInputsOptions = {},
): InputValidationResult {
  if (rawInputs !== undefined && rawInputs !== null && !isPlainObject(rawInputs)) {
    return { ok: false, errors: [{ field: 'inputs', message: `must be an object, got ${describeValue(rawInputs)}` }] };
  }
  return validateRecord(template, rawInputs ?? {}, files, limits, options);
}

function validateRecord(
  template: WorkflowTemplate,
  raw: Readonly<Record<string, unknown>>,
  files: Readonly<Record<string, Uint8Array>>,
  limits: InputLimits,
  options: ValidateInputsOptions,
): InputValidationResult {
  const errors: InputError[] = [];
  for (const name of Object.keys(files)) {
    const spec = Object.hasOwn(template.inputs, name) ? template.inputs[name] : undefined;
    if (spec?.type !== 'image') {
      const what = spec ? `a ${spec.type} input` : 'an unknown input';
      errors.push({ field: `inputs.${name}`, message: `a file was sent for ${what}; only image inputs take files` });
    } else if (raw[name] !== undefined && raw[name] !== null) {
      errors.push({ field: `inputs.${name}`, message: 'was sent both as a file and in inputs; send it once' });
    }
  }
  // What the schema checks: the values given (JSON null means "not given", so clients can send a full form with
  // blanks), text parsed for text channels, files in place of images, a "random" seed where the template allows it.
  const given: Record<string, unknown> = {};
  const sentAsText = new Set<string>();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || value === null) continue;
    const spec = Object.hasOwn(template.inputs, name) ? template.inputs[name] : undefined;
    let candidate: unknown = value;
    if (spec && spec.type !== 'image' && typeof value === 'string') {
      sentAsText.add(name);
      if (options.coerceStrings === true) candidate = coerce(spec, value);
    }
    // defineProperty: a "__proto__" input is an own (unknown) key here, never the object's prototype.
    Object.defineProperty(given, name, { value: candidate, enumerable: true, writable: true, configurable: true });
  }
  for (const [name, bytes] of Object.entries(files)) {
    if (template.inputs[name]?.type === 'image' && !Object.hasOwn(given, name)) given[name] = bytes;
  }
  // A "random" seed is no integer yet: the binder draws it in range, so the schema has nothing to check.
  const checked: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(given)) {
    if (acceptsRandom(Object.hasOwn(template.inputs, name) ? template.inputs[name] : undefined, value)) continue;
    Object.defineProperty(checked, name, { value, enumerable: true, writable: true, configurable: true });
  }

  const failed = new Set<string>();
  for (const problem of inputSetProblems(template.inputs, checked, limits.maxStringLength)) {
    const name = problem.path[0] ?? '';
    failed.add(name);
    errors.push({ field: name ? `inputs.${name}` : 'inputs', message: messageFor(template, name, problem) });
  }

  const values: WorkflowInputValues = {};
  for (const [name, spec] of Object.entries(template.inputs)) {
    if (failed.has(name)) continue;
    if (!Object.hasOwn(given, name)) {
      if (spec.type !== 'image' && spec.default !== undefined) values[name] = spec.default;
      continue;
    }
    if (spec.type !== 'image') {
      values[name] = given[name] as WorkflowInputValue;
      continue;
    }
    const image = readImage(given[name], Math.min(limits.maxImageBytes, spec.maxBytes ?? Infinity));
    if (image.ok) values[name] = image.image;
    else errors.push({ field: `inputs.${name}`, message: image.message });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, values };

  function messageFor(t: WorkflowTemplate, name: string, problem: SchemaProblem): string {
    if (problem.keyword === 'required') return 'is required';
    if (problem.keyword === 'additionalProperties') {
      return `unknown input; workflow "${t.name}" accepts: ${Object.keys(t.inputs).join(', ') || 'none'}`;
    }
    const spec = t.inputs[name];
    // A string sent for a number or a boolean from JSON is the caller's bug: say what to send instead.
    const hint = spec && spec.type !== 'string' && sentAsText.has(name) && options.coerceStrings !== true;
    return hint ? `${problem.message} (send a JSON ${jsonTypeOf(spec)}, not a string)` : problem.message;
  }
}

// "random" is accepted only where the template itself defaults to it, i.e. for seeds.
function acceptsRandom(spec: WorkflowInputSpec | undefined, value: unknown): boolean {
  return spec !== undefined && spec.type === 'integer' && spec.default === RANDOM_SEED && value === RANDOM_SEED;
}

function readImage(value: unknown, maxBytes: number): ImageParseResult {
  if (typeof value === 'string') return imageFromBase64(value, maxBytes);
  if (value instanceof Uint8Array) return imageFromBytes(value, maxBytes);
  return {
    ok: false,
    message: `must be a base64 string or data: URL of a PNG, JPEG or WebP image, got ${describeValue(value)}`,
  };
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
const TRUE_TEXT = new Set(['true', 'yes', 'on', '1']);
const FALSE_TEXT = new Set(['false', 'no', 'off', '0']);

// Unparseable text stays a string, so the type check reports it with the user's own text.
function coerce(spec: ScalarInputSpec, text: string): unknown {
  const trimmed = text.trim();
  switch (spec.type) {
    case 'string':
      return text;
    case 'integer':
      if (spec.default === RANDOM_SEED && trimmed.toLowerCase() === RANDOM_SEED) return RANDOM_SEED;
      return INTEGER_TEXT.test(trimmed) ? Number(trimmed) : text;
    case 'number':
      return NUMBER_TEXT.test(trimmed) ? Number(trimmed) : text;
    case 'boolean': {
      const lower = trimmed.toLowerCase();
      if (TRUE_TEXT.has(lower)) return true;
      return FALSE_TEXT.has(lower) ? false : text;
    }
  }
}

function jsonTypeOf(spec: WorkflowInputSpec): string {
  return spec.type === 'integer' ? 'number' : spec.type;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
