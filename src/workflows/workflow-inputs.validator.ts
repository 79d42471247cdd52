import { imageFromBase64, imageFromBytes, type ImageParseResult } from './image-data.util';
import { checkScalarValue, describeValue } from './input-rules.util';
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
  const values: WorkflowInputValues = {};
  const accepted = Object.keys(template.inputs).join(', ') || 'none';

  for (const name of Object.keys(raw)) {
    if (!Object.hasOwn(template.inputs, name)) {
      errors.push({
        field: `inputs.${name}`,
        message: `unknown input; workflow "${template.name}" accepts: ${accepted}`,
      });
    }
  }
  for (const name of Object.keys(files)) {
    const spec = Object.hasOwn(template.inputs, name) ? template.inputs[name] : undefined;
    if (spec?.type !== 'image') {
      const what = spec ? `a ${spec.type} input` : 'an unknown input';
      errors.push({ field: `inputs.${name}`, message: `a file was sent for ${what}; only image inputs take files` });
    } else if (raw[name] !== undefined && raw[name] !== null) {
      errors.push({ field: `inputs.${name}`, message: 'was sent both as a file and in inputs; send it once' });
    }
  }

  for (const [name, spec] of Object.entries(template.inputs)) {
    const field = `inputs.${name}`;
    const file = spec.type === 'image' && Object.hasOwn(files, name) ? files[name] : undefined;
    const value = file ?? (Object.hasOwn(raw, name) ? raw[name] : undefined);
    // JSON null means "not given", so clients can send a full form with blanks.
    if (value === undefined || value === null) {
      if (spec.required === true) errors.push({ field, message: 'is required' });
      else if (spec.default !== undefined) values[name] = spec.default;
      continue;
    }
    const result = validateValue(spec, value, limits, options);
    if (result.ok) values[name] = result.value;
    else errors.push({ field, message: result.message });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, values };
}

type ValueResult =
  { readonly ok: true; readonly value: WorkflowInputValue } | { readonly ok: false; readonly message: string };

function validateValue(
  spec: WorkflowInputSpec,
  value: unknown,
  limits: InputLimits,
  options: ValidateInputsOptions,
): ValueResult {
  if (spec.type === 'image') {
    const maxBytes = Math.min(limits.maxImageBytes, spec.maxBytes ?? Infinity);
    return fromImage(readImage(value, maxBytes));
  }
  const candidate = options.coerceStrings === true && typeof value === 'string' ? coerce(spec, value) : value;
  // "random" is accepted only where the template itself defaults to it, i.e. for seeds.
  if (spec.type === 'integer' && spec.default === RANDOM_SEED && candidate === RANDOM_SEED) {
    return { ok: true, value: RANDOM_SEED };
  }
  const problem = checkScalarValue(spec, candidate, limits.maxStringLength);
  if (problem !== undefined) {
    const hint = typeof value === 'string' && spec.type !== 'string' && options.coerceStrings !== true;
    return { ok: false, message: hint ? `${problem} (send a JSON ${jsonTypeOf(spec)}, not a string)` : problem };
  }
  return { ok: true, value: candidate as WorkflowInputValue };
}

function readImage(value: unknown, maxBytes: number): ImageParseResult {
  if (typeof value === 'string') return imageFromBase64(value, maxBytes);
  if (value instanceof Uint8Array) return imageFromBytes(value, maxBytes);
  return {
    ok: false,
    message: `must be a base64 string or data: URL of a PNG, JPEG or WebP image, got ${describeValue(value)}`,
  };
}

function fromImage(result: ImageParseResult): ValueResult {
  return result.ok ? { ok: true, value: result.image } : result;
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

function jsonTypeOf(spec: ScalarInputSpec): string {
  return spec.type === 'integer' ? 'number' : spec.type;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
