import { NODE_DEFS } from './nodes/node-registry';
import type { InputSpec, NodeEnv } from './nodes/sim-node.types';
import { PyException, pyFloat, pyFrame, pyInt, pyRepr, pyStr, pyTruthy, pyTypeName } from './comfyui-sim-python.util';
import type { JsonObject } from './comfyui-sim.types';

/**
 * A port of ComfyUI 0.3.64's validate_prompt / validate_inputs (execution.py), quirks included: an exception in a
 * linked node is filed under that node but names the *parent's* input, errors of upstream nodes are attributed to
 * every failed output seen after them, and one good output is enough for a 200.
 */

export interface ValidationErrorBody {
  type: string;
  message: string;
  details: string;
  extra_info: JsonObject;
}

export interface NodeErrorEntry {
  errors: ValidationErrorBody[];
  dependent_outputs: string[];
  class_type: unknown;
}

export type ValidationResult =
  | { ok: true; outputs: string[]; nodeErrors: Record<string, NodeErrorEntry> }
  | { ok: false; error: ValidationErrorBody; nodeErrors: Record<string, NodeErrorEntry> };

type Verdict = [valid: boolean, reasons: ValidationErrorBody[], nodeId: string];

const FRAME_VALIDATE_PROMPT = pyFrame(
  'execution.py',
  1010,
  'validate_prompt',
  'm = await validate_inputs(prompt_id, prompt, o, validated)',
  'await',
);
const FRAME_INNER_CALL = pyFrame(
  'execution.py',
  808,
  'validate_inputs',
  'r = await validate_inputs(prompt_id, prompt, o_id, validated)',
  'await',
);
const FRAME_LINK_LOOKUP = pyFrame(
  'execution.py',
  788,
  'validate_inputs',
  "o_class_type = prompt[o_id]['class_type']",
  'prompt[',
  '~~~~~~^^^^^^',
);
const FRAME_LINK_INDEX = pyFrame(
  'execution.py',
  790,
  'validate_inputs',
  'received_type = r[val[1]]',
  'r[',
  '~^^^^^^^^',
);
const FRAME_INPUTS_LOOKUP = pyFrame(
  'execution.py',
  733,
  'validate_inputs',
  "inputs = prompt[unique_id]['inputs']",
  'prompt[',
  '~~~~~~~~~~~~~~~~~^^^^^^^^^^',
);

/** Python's `key in container` for JSON values (dict keys, list members, substrings). */
export function pyIn(key: unknown, container: unknown): boolean {
  if (typeof container === 'string') {
    if (typeof key !== 'string') {
      throw new PyException('TypeError', `'in <string>' requires string as left operand, not ${pyTypeName(key)}`);
    }
    return container.includes(key);
  }
  if (Array.isArray(container)) return container.some((item) => item === key);
  if (container !== null && typeof container === 'object') {
    return typeof key === 'string' && Object.prototype.hasOwnProperty.call(container, key);
  }
  throw new PyException('TypeError', `argument of type '${pyTypeName(container)}' is not iterable`);
}

/** Python's `container[key]` for the shapes a prompt can take; anything else is the TypeError ComfyUI hits. */
function pyGetItem(container: unknown, key: unknown, frame: string): unknown {
  if (container !== null && typeof container === 'object' && !Array.isArray(container)) {
    if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(container, key)) {
      return (container as JsonObject)[key];
    }
    throw new PyException('KeyError', pyRepr(key), [frame]);
  }
  throw new PyException(
    'TypeError',
    `${pyTypeName(container)} indices must be integers or slices, not ${pyTypeName(key)}`,
    [frame],
  );
}

function pyTupleIndex<T>(tuple: readonly T[], index: unknown): T {
  if (typeof index !== 'number' || !Number.isInteger(index)) {
    throw new PyException('TypeError', `tuple indices must be integers or slices, not ${pyTypeName(index)}`, [
      FRAME_LINK_INDEX,
    ]);
  }
  const i = index < 0 ? tuple.length + index : index;
  if (i < 0 || i >= tuple.length) throw new PyException('IndexError', 'tuple index out of range', [FRAME_LINK_INDEX]);
  return tuple[i];
}

function validateNodeInput(received: unknown, expected: string | readonly string[]): boolean {
  if (received === expected || received === '*' || expected === '*') return true;
  if (typeof received !== 'string' || typeof expected !== 'string') return false;
  const want = new Set(expected.split(',').map((t) => t.trim()));
  return received.split(',').some((t) => want.has(t.trim()));
}

function asPyException(err: unknown): PyException {
  if (err instanceof PyException) return err;
  return new PyException('Exception', err instanceof Error ? err.message : String(err));
}

function fmtNumber(value: unknown, isFloat: boolean): string {
  if (isFloat && typeof value === 'number' && Number.isInteger(value)) return `${value}.0`;
  return pyStr(value);
}

class PromptValidator {
  private readonly validated = new Map<string, Verdict>();
  private readonly inProgress = new Set<string>();

  constructor(
    private readonly prompt: JsonObject,
    private readonly env: NodeEnv,
  ) {}

  validateInputs(item: string): Verdict {
    const known = this.validated.get(item);
    if (known) return known;
    if (this.inProgress.has(item)) {
      throw new PyException('RecursionError', 'maximum recursion depth exceeded', [FRAME_INNER_CALL]);
    }
    this.inProgress.add(item);
    try {
      return this.validateNode(item);
    } finally {
      this.inProgress.delete(item);
    }
  }

  private validateNode(item: string): Verdict {
    const node = this.prompt[item] as JsonObject;
    const inputs = pyGetItem(node, 'inputs', FRAME_INPUTS_LOOKUP) as JsonObject;
    const def = NODE_DEFS.get(node.class_type as string)!;
    const classInputs = def.inputTypes(this.env);
    const custom = def.validateInputs;
    const customNames = custom?.names ?? [];
    const errors: ValidationErrorBody[] = [];
    let valid = true;
    const specs: [string, InputSpec, boolean][] = [
      ...Object.entries(classInputs.required).map(([k, s]): [string, InputSpec, boolean] => [k, s, true]),
      ...Object.entries(classInputs.optional ?? {}).map(([k, s]): [string, InputSpec, boolean] => [k, s, false]),
    ];
    for (const [x, spec, required] of specs) {
      const inputType = spec[0];
      const extraInfo = spec[1] ?? {};
      const info = [inputType, extraInfo];
      if (!pyIn(x, inputs)) {
        if (required) {
          errors.push({
            type: 'required_input_missing',
            message: 'Required input is missing',
            details: x,
            extra_info: { input_name: x },
          });
        }
        continue;
      }
      let val = inputs[x];
      if (Array.isArray(val)) {
        if (val.length !== 2) {
          errors.push({
            type: 'bad_linked_input',
            message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
            details: x,
            extra_info: { input_name: x, input_config: info, received_value: val },
          });
          continue;
        }
        const oId: unknown = val[0];
        const linked = pyGetItem(this.prompt, oId, FRAME_LINK_LOOKUP) as JsonObject;
        const linkedDef = NODE_DEFS.get(linked.class_type as string)!;
        const receivedType = pyTupleIndex(linkedDef.returnTypes, val[1]);
        if (!validateNodeInput(receivedType, inputType)) {
          const details = `${x}, received_type(${receivedType}) mismatch input_type(${pyStr(inputType)})`;
          errors.push({
            type: 'return_type_mismatch',
            message: 'Return type mismatch between linked nodes',
            details,
            extra_info: { input_name: x, input_config: info, received_type: receivedType, linked_node: val },
          });
          continue;
        }
        try {
          if (!this.validateInputs(oId as string)[0]) valid = false;
        } catch (err) {
          const ex = asPyException(err);
          valid = false;
          this.validated.set(oId as string, [
            false,
            [
              {
                type: 'exception_during_inner_validation',
                message: 'Exception when validating inner node',
                details: ex.message,
                extra_info: {
                  input_name: x,
                  input_config: info,
                  exception_message: ex.message,
                  exception_type: ex.pyType,
                  traceback: [FRAME_INNER_CALL, ...ex.traceback],
                  linked_node: val,
                },
              },
            ],
            oId as string,
          ]);
        }
        continue;
      }
      try {
        if (val !== null && typeof val === 'object' && pyIn('__value__', val)) {
          val = (val as JsonObject).__value__;
          inputs[x] = val;
        }
        if (inputType === 'INT') val = pyInt(val);
        else if (inputType === 'FLOAT') val = pyFloat(val);
        else if (inputType === 'STRING') val = pyStr(val);
        else if (inputType === 'BOOLEAN') val = pyTruthy(val);
        inputs[x] = val;
      } catch (err) {
        const ex = asPyException(err);
        errors.push({
          type: 'invalid_input_type',
          message: `Failed to convert an input value to a ${pyStr(inputType)} value`,
          details: `${x}, ${pyStr(val)}, ${ex.message}`,
          extra_info: { input_name: x, input_config: info, received_value: val, exception_message: ex.message },
        });
        continue;
      }
      if (customNames.includes(x)) continue;
      const isFloat = inputType === 'FLOAT';
      if (typeof extraInfo.min === 'number' && typeof val === 'number' && val < extraInfo.min) {
        errors.push({
          type: 'value_smaller_than_min',
          message: `Value ${fmtNumber(val, isFloat)} smaller than min of ${fmtNumber(extraInfo.min, isFloat)}`,
          details: x,
          extra_info: { input_name: x, input_config: info, received_value: val },
        });
        continue;
      }
      if (typeof extraInfo.max === 'number' && typeof val === 'number' && val > extraInfo.max) {
        errors.push({
          type: 'value_bigger_than_max',
          message: `Value ${fmtNumber(val, isFloat)} bigger than max of ${fmtNumber(extraInfo.max, isFloat)}`,
          details: x,
          extra_info: { input_name: x, input_config: info, received_value: val },
        });
        continue;
      }
      if (Array.isArray(inputType) && !inputType.some((option) => option === val)) {
        const big = inputType.length > 20;
        errors.push({
          type: 'value_not_in_list',
          message: 'Value not in list',
          details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${inputType.length})` : pyRepr(inputType)}`,
          extra_info: { input_name: x, input_config: big ? null : info, received_value: val },
        });
        continue;
      }
    }
    if (custom) {
      const filtered: JsonObject = {};
      for (const name of custom.names)
        if (pyIn(name, inputs) && !Array.isArray(inputs[name])) filtered[name] = inputs[name];
      if (Object.keys(filtered).length === custom.names.length) {
        const ret = custom.check(filtered, this.env);
        if (ret !== true) {
          for (const x of Object.keys(filtered)) {
            errors.push({
              type: 'custom_validation_failed',
              message: 'Custom validation failed for node',
              details: `${x} - ${ret}`,
              extra_info: { input_name: x },
            });
          }
        }
      }
    }
    const verdict: Verdict = errors.length > 0 || !valid ? [false, errors, item] : [true, [], item];
    this.validated.set(item, verdict);
    return verdict;
  }

  /** validate_prompt's per-output loop and its node_errors bookkeeping. */
  validateOutputs(outputs: string[]): ValidationResult {
    const good: string[] = [];
    const failed: [string, ValidationErrorBody[]][] = [];
    const nodeErrors: Record<string, NodeErrorEntry> = {};
    for (const o of outputs) {
      let valid = false;
      let reasons: ValidationErrorBody[] = [];
      try {
        [valid, reasons] = this.validateInputs(o);
      } catch (err) {
        const ex = asPyException(err);
        reasons = [
          {
            type: 'exception_during_validation',
            message: 'Exception when validating node',
            details: ex.message,
            extra_info: { exception_type: ex.pyType, traceback: [FRAME_VALIDATE_PROMPT, ...ex.traceback] },
          },
        ];
        this.validated.set(o, [false, reasons, o]);
      }
      if (valid) {
        good.push(o);
        continue;
      }
      failed.push([o, reasons]);
      for (const [nodeId, [ok, nodeReasons]] of this.validated) {
        if (ok || nodeReasons.length === 0) continue;
        nodeErrors[nodeId] ??= {
          errors: nodeReasons,
          dependent_outputs: [],
          class_type: (this.prompt[nodeId] as JsonObject).class_type,
        };
        nodeErrors[nodeId].dependent_outputs.push(o);
      }
    }
    if (good.length === 0) {
      const details = failed.flatMap(([, errs]) => errs.map((e) => `${e.message}: ${e.details}`)).join('\n');
      return {
        ok: false,
        error: {
          type: 'prompt_outputs_failed_validation',
          message: 'Prompt outputs failed validation',
          details,
          extra_info: {},
        },
        nodeErrors,
      };
    }
    return { ok: true, outputs: good, nodeErrors };
  }
}

/**
 * validate_prompt(). Shapes ComfyUI cannot handle (a node that is a number, a class_type that is a list) throw a
 * PyException the HTTP layer turns into ComfyUI's plain-text 500.
 */
export function validatePrompt(prompt: JsonObject, partialTargets: unknown, env: NodeEnv): ValidationResult {
  const outputs: string[] = [];
  for (const [x, node] of Object.entries(prompt)) {
    if (!pyIn('class_type', node)) {
      return {
        ok: false,
        error: {
          type: 'invalid_prompt',
          message: 'Cannot execute because a node is missing the class_type property.',
          details: `Node ID '#${x}'`,
          extra_info: {},
        },
        nodeErrors: {},
      };
    }
    const classType = pyGetItem(node, 'class_type', FRAME_INPUTS_LOOKUP);
    if (Array.isArray(classType) || (classType !== null && typeof classType === 'object')) {
      throw new PyException('TypeError', `unhashable type: '${pyTypeName(classType)}'`);
    }
    const def = typeof classType === 'string' ? NODE_DEFS.get(classType) : undefined;
    if (!def) {
      return {
        ok: false,
        error: {
          type: 'invalid_prompt',
          message: `Cannot execute because node ${pyStr(classType)} does not exist.`,
          details: `Node ID '#${x}'`,
          extra_info: {},
        },
        nodeErrors: {},
      };
    }
    if (def.outputNode && (partialTargets === null || partialTargets === undefined || pyIn(x, partialTargets))) {
      outputs.push(x);
    }
  }
  if (outputs.length === 0) {
    return {
      ok: false,
      error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} },
      nodeErrors: {},
    };
  }
  return new PromptValidator(prompt, env).validateOutputs(outputs);
}
