import { Type, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';
import { MESSAGES, OBJECT_NAME, readable, UNKNOWN_KEY } from '../common/schema/schema-helpers';
import { BIND_PATH } from './bind-path.util';
import type { WorkflowInputType } from './workflow.types';

/**
 * The workflow template file format (workflows/README.md) as a JSON Schema: shapes, field types, which fields each
 * input type takes, and the rules that need nothing but the file itself. What it cannot say — references into the
 * graph (binds, links, the output node), the file's name, min ≤ max, and defaults and examples, which are checked
 * against the input's own value schema — is checked by workflow-template.validator.ts after it.
 */

export const WORKFLOW_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
// Starts with a letter, so no input can be called __proto__ and land on an object's prototype.
export const INPUT_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Keys starting with "$" (e.g. "$comment") are notes for template authors, allowed in every object of the file. */
const NOTES = { '^\\$': Type.Unknown() };

/** An object that takes only `properties` (and notes); an unknown key is named with what the object is. */
function closed<P extends TProperties>(properties: P, what: string, options: Record<string, unknown> = {}): TObject<P> {
  return Type.Object(properties, {
    additionalProperties: false,
    patternProperties: NOTES,
    [OBJECT_NAME]: what,
    ...options,
  });
}

const Integer = (options: Record<string, unknown> = {}) => readable(Type.Integer(options), 'an integer');
const Refused = (message: string) => Type.Unsafe<never>({ not: {}, [MESSAGES]: { not: message } });

function inputSpec(type: WorkflowInputType, properties: TProperties, options: Record<string, unknown> = {}) {
  return closed(
    {
      type: Type.Literal(type),
      required: Type.Optional(readable(Type.Boolean(), 'a boolean')),
      // Checked against the input's value schema by the validator, with the value's own words.
      default: Type.Optional(Type.Unknown()),
      bind: readable(
        Type.Array(readable(Type.String({ pattern: BIND_PATH.source }), '"<nodeId>.inputs.<inputName>"')),
        'an array of "<nodeId>.inputs.<inputName>" paths ([] binds nowhere)',
      ),
      description: Type.Optional(readable(Type.String(), 'a string')),
      ...properties,
    },
    `a${type === 'integer' || type === 'image' ? 'n' : ''} ${type} input`,
    options,
  );
}

// A required input is always given: a default would never be used, so it is a mistake in the template.
const NO_DEFAULT_WHEN_REQUIRED = {
  if: { properties: { required: { const: true } }, required: ['required'] },
  then: { properties: { default: Refused('a required input cannot have a default') } },
};
const Examples = Type.Optional(readable(Type.Array(Type.Unknown()), 'an array'));

const InputSpecSchema = Type.Unsafe({
  type: 'object',
  discriminator: { propertyName: 'type' },
  oneOf: [
    inputSpec(
      'string',
      {
        minLength: Type.Optional(Integer({ minimum: 0 })),
        maxLength: Type.Optional(Integer({ minimum: 1 })),
        pattern: Type.Optional(readable(Type.String({ format: 'regex' }), 'a regular expression string')),
        enum: Type.Optional(
          readable(Type.Array(Type.String(), { minItems: 1, uniqueItems: true }), 'a non-empty array of strings'),
        ),
        examples: Examples,
      },
      NO_DEFAULT_WHEN_REQUIRED,
    ),
    inputSpec(
      'integer',
      {
        min: Type.Optional(Integer()),
        max: Type.Optional(Integer()),
        multipleOf: Type.Optional(Integer({ minimum: 1 })),
        examples: Examples,
      },
      NO_DEFAULT_WHEN_REQUIRED,
    ),
    inputSpec(
      'number',
      {
        min: Type.Optional(readable(Type.Number(), 'a finite number')),
        max: Type.Optional(readable(Type.Number(), 'a finite number')),
        examples: Examples,
      },
      NO_DEFAULT_WHEN_REQUIRED,
    ),
    inputSpec('boolean', {}, NO_DEFAULT_WHEN_REQUIRED),
    inputSpec('image', {
      required: Type.Unsafe<true>({
        const: true,
        [MESSAGES]: {
          '*': 'image inputs must be required: an absent image would leave LoadImage naming a file the server lacks',
        },
      }),
      default: Type.Optional(Refused('image inputs cannot have a default')),
      maxBytes: Type.Optional(Integer({ minimum: 1 })),
    }),
  ],
  mustBe: 'an input spec object',
});

const NodeSchema = readable(
  Type.Object({
    class_type: readable(Type.String({ pattern: '\\S' }), 'a non-empty string (the ComfyUI node class)'),
    inputs: readable(Type.Record(Type.String(), Type.Unknown()), 'an object'),
    _meta: Type.Optional(readable(Type.Record(Type.String(), Type.Unknown()), 'an object')),
  }),
  'a node object',
);

export const WorkflowTemplateFileSchema: TSchema = readable(
  closed(
    {
      name: readable(
        Type.String({ pattern: WORKFLOW_NAME_PATTERN.source }),
        `a string matching ${String(WORKFLOW_NAME_PATTERN)}`,
      ),
      description: readable(Type.String({ pattern: '\\S' }), 'a non-empty string'),
      inputs: readable(
        Type.Object(
          {},
          {
            additionalProperties: false,
            patternProperties: { ...NOTES, [INPUT_NAME_PATTERN.source]: InputSpecSchema },
            [UNKNOWN_KEY]: `input name must match ${String(INPUT_NAME_PATTERN)}`,
          },
        ),
        'an object of input specs (use {} for none)',
      ),
      output: Type.Optional(
        readable(
          closed({ node: readable(Type.String({ pattern: '^[\\s\\S]' }), 'a node id string') }, 'this object'),
          'an object { "node": "<nodeId>" }',
        ),
      ),
      prompt: readable(
        Type.Object(
          {},
          { additionalProperties: NodeSchema, minProperties: 1, [MESSAGES]: { minProperties: 'has no nodes' } },
        ),
        'a ComfyUI API-format graph (node id → { class_type, inputs })',
      ),
    },
    'this object',
  ),
  'a JSON object',
);
