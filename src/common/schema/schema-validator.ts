import Ajv, { type ErrorObject } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { MUST_BE } from './schema-helpers';

/**
 * The one ajv instance every schema is compiled with (event envelopes, workflow files, workflow inputs). Strict, so
 * a typo in a schema keyword fails at start-up; `verbose` keeps the failing schema on each error, which the
 * messages below are written from. Unions are written as `anyOf` (TypeBox's shape), which strictTypes would flag.
 */
const ajv = new Ajv({ strict: true, strictTypes: false, allErrors: false, verbose: true });
ajv.addKeyword(MUST_BE);
ajv.addFormat('iso-date', (text: string) => !Number.isNaN(Date.parse(text)));
ajv.addFormat('regex', (text: string) => regexProblem(text) === undefined);

/** A schema's first problem with a value: where (path segments from the checked value) and what ("must be …"). */
export interface SchemaProblem {
  readonly path: readonly string[];
  readonly message: string;
}

/** A compiled check of values against one schema; the type guard is the schema's TypeScript type. */
export interface SchemaCheck<T> {
  (value: unknown): value is T;
  /** Undefined when the value conforms; else its first problem, worded for an operator or a client. */
  problem(value: unknown): SchemaProblem | undefined;
}

/** Compiles `schema` once (at module load: a bad schema stops the process at start-up, never at first use). */
export function compileSchema<S extends TSchema, T = S['static']>(schema: S): SchemaCheck<T> {
  const validate = ajv.compile<T>(schema);
  const check = ((value: unknown) => validate(value)) as SchemaCheck<T>;
  check.problem = (value) => (validate(value) ? undefined : describeError(validate.errors ?? []));
  return check;
}

/**
 * With allErrors off ajv stops at the first failure; a failed union reports its branches first and itself last,
 * so the last error is the outermost: "must be a string or a number", not one branch's complaint.
 */
function describeError(errors: readonly ErrorObject[]): SchemaProblem {
  const error = errors[errors.length - 1];
  if (!error) return { path: [], message: 'is not valid' };
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const { keyword, params, parentSchema, data } = error;
  const schema = parentSchema;
  if (keyword !== 'required' && keyword !== 'additionalProperties' && typeof schema?.[MUST_BE] === 'string') {
    return { path, message: `must be ${schema[MUST_BE]}, got ${describeValue(data)}` };
  }
  switch (keyword) {
    case 'required': {
      const missing = (params as { missingProperty: string }).missingProperty;
      const properties = (schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
      const wanted = phraseOf(properties[missing]);
      return { path: [...path, missing], message: wanted ? `must be ${wanted}, got nothing` : 'is required' };
    }
    case 'additionalProperties': {
      const extra = (params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((schema?.properties ?? {}) as object).join(', ') || 'none';
      return { path: [...path, extra], message: `is not a known field (allowed: ${allowed})` };
    }
    case 'enum':
    case 'const':
    case 'type':
    case 'anyOf':
    case 'oneOf':
    case 'format':
    case 'pattern':
      return { path, message: `must be ${phraseOf(schema) ?? error.message ?? 'valid'}, got ${describeValue(data)}` };
    default:
      return { path, message: `${error.message ?? 'is not valid'}, got ${describeValue(data)}` };
  }
}

/** A path as messages print it: `inputs.width`, `outputs[0].size`. */
export function formatPath(root: string, path: readonly string[]): string {
  return path.reduce((out, segment) => (/^\d+$/.test(segment) ? `${out}[${segment}]` : `${out}.${segment}`), root);
}

/** What a schema accepts, in words: its own phrase (MUST_BE), else its enum, constant or JSON type(s). */
function phraseOf(schema: Record<string, unknown> | undefined): string | undefined {
  if (!schema) return undefined;
  if (typeof schema[MUST_BE] === 'string') return schema[MUST_BE];
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema.const);
  if (typeof schema.type === 'string') return schema.type;
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as Record<string, unknown>[]).map(phraseOf);
    return branches.every((b) => b !== undefined) ? branches.join(' or ') : undefined;
  }
  return undefined;
}

/** A value as an error message shows it: its type, and a short excerpt of a string or number. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Why `text` is not a regular expression (with the u flag, as template patterns are matched), or undefined. */
export function regexProblem(text: string): string | undefined {
  try {
    new RegExp(text, 'u');
    return undefined;
  } catch (error: unknown) {
    return error instanceof Error ? error.message : String(error);
  }
}
