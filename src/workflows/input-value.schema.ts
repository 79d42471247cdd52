import { Type, type TSchema } from '@sinclair/typebox';
import { PATTERN_TEXT, readable } from '../common/schema/schema-helpers';
import { compileSchema, type SchemaCheck, type SchemaProblem } from '../common/schema/schema-validator';
import type { ScalarInputSpec, WorkflowInputSpec } from './workflow.types';

/**
 * The JSON Schema of one scalar input's values, made from its spec in the template: the one rule set for a
 * request's values, the template's own defaults and examples, and the binder's re-check of values that went
 * through a stream. `maxStringLength` is the service-wide limit, which a template's maxLength can only tighten.
 */
export function inputValueSchema(spec: ScalarInputSpec, maxStringLength?: number): TSchema {
  switch (spec.type) {
    case 'string': {
      if (spec.enum !== undefined) return readable(Type.String({ enum: [...spec.enum] }), 'a string');
      const maxLength = Math.min(spec.maxLength ?? Infinity, maxStringLength ?? Infinity);
      return readable(
        Type.String({
          ...(Number.isFinite(maxLength) ? { maxLength } : {}),
          ...(spec.minLength !== undefined ? { minLength: spec.minLength } : {}),
          // Template patterns match the whole value, whatever anchors their author wrote.
          ...(spec.pattern !== undefined ? { pattern: `^(?:${spec.pattern})$`, [PATTERN_TEXT]: spec.pattern } : {}),
        }),
        'a string',
      );
    }
    case 'integer':
      // Unbounded integers stop at the safe range: past it a JSON number no longer names one integer.
      return readable(
        Type.Integer({
          minimum: spec.min ?? Number.MIN_SAFE_INTEGER,
          maximum: spec.max ?? Number.MAX_SAFE_INTEGER,
          ...(spec.multipleOf !== undefined ? { multipleOf: spec.multipleOf } : {}),
        }),
        'an integer',
      );
    case 'number':
      return readable(
        Type.Number({
          ...(spec.min !== undefined ? { minimum: spec.min } : {}),
          ...(spec.max !== undefined ? { maximum: spec.max } : {}),
        }),
        'a number',
      );
    case 'boolean':
      return readable(Type.Boolean(), 'a boolean');
  }
}

/** The schema of a whole input set: every input (images: any value, decoded by the image reader), required ones. */
export function inputSetSchema(inputs: Readonly<Record<string, WorkflowInputSpec>>, maxStringLength?: number): TSchema {
  const properties: Record<string, TSchema> = {};
  for (const [name, spec] of Object.entries(inputs)) {
    properties[name] = spec.type === 'image' ? Type.Unknown() : inputValueSchema(spec, maxStringLength);
  }
  const required = Object.entries(inputs)
    .filter(([, spec]) => spec.required === true)
    .map(([name]) => name);
  return Type.Unsafe({ type: 'object', properties, required, additionalProperties: false });
}

const valueChecks = new WeakMap<ScalarInputSpec, Map<number | undefined, SchemaCheck<unknown>>>();

/**
 * Checks one value against its spec's schema (compiled once per spec and string limit). Returns a message
 * ("must be …") or undefined when the value is acceptable.
 */
export function checkScalarValue(spec: ScalarInputSpec, value: unknown, maxStringLength?: number): string | undefined {
  let bySpec = valueChecks.get(spec);
  if (!bySpec) valueChecks.set(spec, (bySpec = new Map<number | undefined, SchemaCheck<unknown>>()));
  let check = bySpec.get(maxStringLength);
  if (!check) bySpec.set(maxStringLength, (check = compileSchema(inputValueSchema(spec, maxStringLength))));
  return check.problem(value)?.message;
}

const setChecks = new WeakMap<object, Map<number | undefined, SchemaCheck<Record<string, unknown>>>>();

/** Every problem of an input set (compiled once per template's inputs and string limit), at most one per input. */
export function inputSetProblems(
  inputs: Readonly<Record<string, WorkflowInputSpec>>,
  values: Readonly<Record<string, unknown>>,
  maxStringLength?: number,
): SchemaProblem[] {
  let byInputs = setChecks.get(inputs);
  if (!byInputs)
    setChecks.set(inputs, (byInputs = new Map<number | undefined, SchemaCheck<Record<string, unknown>>>()));
  let check = byInputs.get(maxStringLength);
  if (!check) {
    check = compileSchema<TSchema, Record<string, unknown>>(inputSetSchema(inputs, maxStringLength), { every: true });
    byInputs.set(maxStringLength, check);
  }
  return check.problems(values);
}
