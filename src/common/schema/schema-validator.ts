import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { ANNOTATIONS, MESSAGES, MUST_BE, OBJECT_NAME, PATTERN_TEXT, UNKNOWN_KEY } from './schema-helpers';

/**
 * The ajv instances every schema is compiled with (event envelopes, workflow files, workflow inputs). Strict, so a
 * typo in a schema keyword fails at start-up; `verbose` keeps the failing schema on each error, which the messages
 * below are written from. Unions are written as `anyOf` (TypeBox's shape), which strictTypes would flag. One stops at
 * the first problem (a stream reader needs one reason); the other reports every problem (a template author or a
 * client fixes them all at once).
 */
function makeAjv(allErrors: boolean): Ajv {
  const ajv = new Ajv({ strict: true, strictTypes: false, allErrors, verbose: true, discriminator: true });
  for (const annotation of ANNOTATIONS) ajv.addKeyword(annotation);
  ajv.addFormat('iso-date', (text: string) => !Number.isNaN(Date.parse(text)));
  ajv.addFormat('regex', (text: string) => regexProblem(text) === undefined);
  return ajv;
}
const firstProblem = makeAjv(false);
const everyProblem = makeAjv(true);

/** A schema's problem with a value: where (path segments from the checked value) and what ("must be …"). */
export interface SchemaProblem {
  readonly path: readonly string[];
  readonly message: string;
  /** The JSON Schema keyword that failed (`required`, `type`, `additionalProperties`, …). */
  readonly keyword: string;
}

/** A compiled check of values against one schema; the type guard is the schema's TypeScript type. */
export interface SchemaCheck<T> {
  (value: unknown): value is T;
  /** Undefined when the value conforms; else its first problem, worded for an operator or a client. */
  problem(value: unknown): SchemaProblem | undefined;
  /** Every problem (compiled with `every: true`), at most one per path; [] when the value conforms. */
  problems(value: unknown): SchemaProblem[];
}

/**
 * Compiles `schema` once (at module load or when a template is loaded: a bad schema fails then, never at first
 * use). `every`: report every problem rather than stop at the first.
 */
export function compileSchema<S extends TSchema, T = S['static']>(
  schema: S,
  { every = false }: { every?: boolean } = {},
): SchemaCheck<T> {
  const validate: ValidateFunction<T> = (every ? everyProblem : firstProblem).compile<T>(schema);
  const check = ((value: unknown) => validate(value)) as SchemaCheck<T>;
  check.problem = (value) => (validate(value) ? undefined : describeError(outermost(validate.errors ?? [])));
  check.problems = (value) => {
    if (validate(value)) return [];
    const seen = new Set<string>();
    return reported(validate.errors ?? [])
      .map(describeError)
      .filter((problem) => {
        const key = problem.path.join('\u0000');
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
  };
  return check;
}

/**
 * With allErrors off ajv stops at the first failure; a failed union reports its branches first and itself last,
 * so the last error is the outermost: "must be a string or a number", not one branch's complaint.
 */
function outermost(errors: readonly ErrorObject[]): ErrorObject | undefined {
  return errors[errors.length - 1];
}

/**
 * The errors worth a message, from an every-problem run: an `if` failure only repeats its `then`'s errors, and a
 * failed union's branches are noise beside the union's own error (one with a discriminator checks one branch only:
 * its errors are the message).
 */
function reported(errors: readonly ErrorObject[]): ErrorObject[] {
  const unions = errors
    .filter(
      (e) =>
        e.keyword === 'anyOf' ||
        (e.keyword === 'oneOf' && !(e.parentSchema as { discriminator?: unknown })?.discriminator),
    )
    .map((e) => `${e.schemaPath}/`);
  return errors.filter((e) => e.keyword !== 'if' && !unions.some((union) => e.schemaPath.startsWith(union)));
}

/** Keywords that say what kind of value is wanted: a schema's own phrase (MUST_BE) words them best. */
const KIND_KEYWORDS = new Set(['type', 'anyOf', 'oneOf', 'const', 'format', 'pattern', 'minItems']);

function describeError(error: ErrorObject | undefined): SchemaProblem {
  if (!error) return { path: [], message: 'is not valid', keyword: '' };
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const { keyword, params, data } = error;
  const schema = error.parentSchema;
  const problem = (message: string, at = path): SchemaProblem => ({ path: at, message, keyword });
  const own = ownMessage(schema, keyword);
  if (own !== undefined) return problem(own);
  if (keyword === 'format' && (params as { format: string }).format === 'regex') {
    return problem(`is not a valid regular expression: ${regexProblem(String(data)) ?? ''}`);
  }
  const ownPattern = keyword === 'pattern' && typeof schema?.[PATTERN_TEXT] === 'string';
  if (KIND_KEYWORDS.has(keyword) && !ownPattern && typeof schema?.[MUST_BE] === 'string') {
    return problem(`must be ${schema[MUST_BE]}, got ${describeValue(data)}`);
  }
  const limit = (params as { limit?: number }).limit;
  switch (keyword) {
    case 'required': {
      const missing = (params as { missingProperty: string }).missingProperty;
      const properties = (schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
      const wanted = phraseOf(properties[missing]);
      const message =
        ownMessage(properties[missing], '*') ?? (wanted ? `must be ${wanted}, got nothing` : 'is required');
      return problem(message, [...path, missing]);
    }
    case 'additionalProperties': {
      const extra = (params as { additionalProperty: string }).additionalProperty;
      if (typeof schema?.[UNKNOWN_KEY] === 'string') return problem(schema[UNKNOWN_KEY], [...path, extra]);
      const allowed = Object.keys((schema?.properties ?? {}) as Record<string, unknown>).join(', ') || 'none';
      const what = typeof schema?.[OBJECT_NAME] === 'string' ? schema[OBJECT_NAME] : 'this object';
      return problem(`unknown field for ${what} (allowed: ${allowed})`, [...path, extra]);
    }
    case 'discriminator': {
      // The union's tag is missing or names no branch: say which tags there are.
      const { tag, tagValue } = params as { tag: string; tagValue: unknown };
      const branches = (schema?.oneOf ?? []) as { properties?: Record<string, { const?: unknown }> }[];
      const tags = branches.map((b) => String(b.properties?.[tag]?.const)).join(', ');
      return problem(`must be one of ${tags}, got ${describeValue(tagValue)}`, [...path, tag]);
    }
    case 'uniqueItems':
      return problem('must not repeat values');
    case 'enum':
      return problem(`must be one of: ${(schema?.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
    case 'minimum':
      return problem(`must be at least ${limit}, got ${String(data)}`);
    case 'maximum':
      return problem(`must be at most ${limit}, got ${String(data)}`);
    case 'multipleOf':
      return problem(`must be a multiple of ${(params as { multipleOf: number }).multipleOf}, got ${String(data)}`);
    case 'minLength':
      return problem(`must be at least ${limit} characters, got ${codePointLength(String(data))}`);
    case 'maxLength':
      return problem(`must be at most ${limit} characters, got ${codePointLength(String(data))}`);
    case 'pattern':
      if (typeof schema?.[PATTERN_TEXT] === 'string') return problem(`must match the pattern ${schema[PATTERN_TEXT]}`);
      return problem(`must match the pattern ${(params as { pattern: string }).pattern}, got ${describeValue(data)}`);
    case 'type':
    case 'const':
    case 'anyOf':
    case 'oneOf':
    case 'format':
      return problem(`must be ${phraseOf(schema) ?? error.message ?? 'valid'}, got ${describeValue(data)}`);
    default:
      return problem(`${error.message ?? 'is not valid'}, got ${describeValue(data)}`);
  }
}

function ownMessage(schema: Record<string, unknown> | undefined, keyword: string): string | undefined {
  const messages = schema?.[MESSAGES] as Record<string, string> | undefined;
  return messages?.[keyword] ?? messages?.['*'];
}

/** A path as messages print it: `inputs.width`, `outputs[0].size`. */
export function formatPath(root: string, path: readonly string[]): string {
  return path.reduce((out, segment) => (/^\d+$/.test(segment) ? `${out}[${segment}]` : `${out}.${segment}`), root);
}

/** What a schema accepts, in words: its own phrase (MUST_BE), else its enum, constant or JSON type(s). */
function phraseOf(schema: Record<string, unknown> | undefined): string | undefined {
  if (!schema) return undefined;
  if (typeof schema[MUST_BE] === 'string') return schema[MUST_BE];
  if (Array.isArray(schema.enum)) return `one of: ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in schema) return JSON.stringify(schema.const);
  if (typeof schema.type === 'string') return schema.type;
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as Record<string, unknown>[]).map(phraseOf);
    return branches.every((b) => b !== undefined) ? branches.join(' or ') : undefined;
  }
  return undefined;
}

/** Length as users count it (and JSON Schema's maxLength does): code points, so an emoji is one character. */
export function codePointLength(value: string): number {
  let length = 0;
  for (const _ of value) length++;
  return length;
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
