import type { ScalarInputSpec } from './workflow.types';

const compiledPatterns = new Map<string, RegExp>();

/** Template patterns always match the whole value; compiled once per distinct pattern. */
export function wholeValuePattern(pattern: string): RegExp {
  let compiled = compiledPatterns.get(pattern);
  if (!compiled) {
    compiled = new RegExp(`^(?:${pattern})$`, 'u');
    compiledPatterns.set(pattern, compiled);
  }
  return compiled;
}

/** Length as users count it: code points, so an emoji or a Cyrillic letter is one character. */
export function codePointLength(value: string): number {
  let length = 0;
  for (const _ of value) length++;
  return length;
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/**
 * Checks a value of the right JS type against the spec's constraints. Used for template defaults and
 * examples at load time and for request values, so both follow exactly the same rules.
 * Returns a message ("must be …") or undefined when the value is acceptable.
 */
export function checkScalarValue(spec: ScalarInputSpec, value: unknown, maxStringLength?: number): string | undefined {
  switch (spec.type) {
    case 'string':
      return checkString(spec, value, maxStringLength);
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        return `must be an integer, got ${describeValue(value)}`;
      if (spec.multipleOf !== undefined && value % spec.multipleOf !== 0) {
        return `must be a multiple of ${spec.multipleOf}, got ${value}`;
      }
      return checkRange(spec.min, spec.max, value);
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a number, got ${describeValue(value)}`;
      return checkRange(spec.min, spec.max, value);
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be a boolean, got ${describeValue(value)}`;
  }
}

function checkString(
  spec: Extract<ScalarInputSpec, { type: 'string' }>,
  value: unknown,
  maxStringLength: number | undefined,
): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describeValue(value)}`;
  if (spec.enum !== undefined) {
    return spec.enum.includes(value)
      ? undefined
      : `must be one of: ${spec.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  const length = codePointLength(value);
  const max = Math.min(spec.maxLength ?? Infinity, maxStringLength ?? Infinity);
  if (length > max) return `must be at most ${max} characters, got ${length}`;
  if (spec.minLength !== undefined && length < spec.minLength) {
    return `must be at least ${spec.minLength} characters, got ${length}`;
  }
  if (spec.pattern !== undefined && !wholeValuePattern(spec.pattern).test(value)) {
    return `must match the pattern ${spec.pattern}`;
  }
  return undefined;
}

function checkRange(min: number | undefined, max: number | undefined, value: number): string | undefined {
  if (min !== undefined && value < min) return `must be at least ${min}, got ${value}`;
  if (max !== undefined && value > max) return `must be at most ${max}, got ${value}`;
  return undefined;
}
