import { Type, type SchemaOptions, type TSchema, type TUnsafe } from '@sinclair/typebox';

/**
 * The phrase a failed check prints after "must be" (e.g. `an id (1-128 of A-Za-z0-9_.:-)`), where the schema's own
 * keywords would say it less plainly. An annotation: ajv knows it as a keyword that checks nothing.
 */
export const MUST_BE = 'mustBe';

/** The pattern as its author wrote it (the schema's own pattern may wrap it), for "must match the pattern …". */
export const PATTERN_TEXT = 'patternText';

/** An object schema's name in "unknown field for <name> (allowed: …)". */
export const OBJECT_NAME = 'objectName';

/** What an object schema says of a key it does not take (instead of "unknown field …"). */
export const UNKNOWN_KEY = 'unknownKey';

/** Messages for this schema's failures by keyword ("*": any keyword), where neither the phrase nor the keyword's own words fit. */
export const MESSAGES = 'messages';

/** Every annotation keyword above: ajv is told they check nothing. */
export const ANNOTATIONS = [MUST_BE, PATTERN_TEXT, OBJECT_NAME, UNKNOWN_KEY, MESSAGES];

export interface ReadableOptions extends SchemaOptions {
  [MUST_BE]?: string;
}

/** A string that is one of `values` (JSON Schema `enum`: the error lists what is allowed). */
export function StringEnum<const V extends readonly string[]>(
  values: V,
  options: ReadableOptions = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...options, type: 'string', enum: [...values] });
}

/** Marks a schema with the phrase its errors print (see MUST_BE). */
export function readable<S extends TSchema>(schema: S, mustBe: string): S {
  return { ...schema, [MUST_BE]: mustBe };
}
