import { randomUUID } from 'node:crypto';
import { PyException, pyFloat, pyStr, pyTruthy } from '../comfyui-sim-python.util';
import { pyIn, validatePrompt, type ValidationResult } from '../comfyui-sim-validator';
import type { JsonObject, SimPrompt, SimQueueItem } from '../comfyui-sim.types';
import { getItem, json, type HttpReply } from './http-reply';
import type { SimHttpState } from './http-state';

const SENSITIVE_EXTRA_DATA_KEYS = ['auth_token_comfy_org', 'api_key_comfy_org'];

/**
 * POST /prompt as server.py's post_prompt: the number is taken (and the counter advanced) before anything is
 * checked, `prompt_id` is echoed, validation answers 400, and a prompt with one good output is queued.
 */
export function postPrompt(state: SimHttpState, data: unknown): HttpReply {
  let number: number;
  if (pyIn('number', data)) {
    number = pyFloat(getItem(data, 'number'));
  } else {
    number = state.number;
    if (pyIn('front', data) && pyTruthy(getItem(data, 'front'))) number = -number;
    state.number++;
  }
  if (!pyIn('prompt', data)) {
    return rejected(state, { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided' });
  }
  const prompt = getItem(data, 'prompt');
  if (prompt === null || typeof prompt !== 'object' || Array.isArray(prompt)) {
    // validate_prompt iterates it: an empty list/str has no outputs, anything else raises (plain 500).
    if ((Array.isArray(prompt) || typeof prompt === 'string') && prompt.length === 0) {
      return rejected(state, { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '' });
    }
    throw new PyException('TypeError', 'prompt is not a dict');
  }
  const promptId = pyIn('prompt_id', data) ? pyStr(getItem(data, 'prompt_id')) : randomUUID();
  const partial = pyIn('partial_execution_targets', data) ? getItem(data, 'partial_execution_targets') : null;
  const valid = injectValidationFault(
    state,
    prompt as JsonObject,
    validatePrompt(prompt as JsonObject, partial, state.env),
  );
  const extraData = pyIn('extra_data', data) ? getItem(data, 'extra_data') : {};
  if (pyIn('client_id', data)) {
    if (extraData === null || typeof extraData !== 'object' || Array.isArray(extraData)) {
      throw new PyException('TypeError', 'extra_data does not support item assignment');
    }
    (extraData as JsonObject).client_id = getItem(data, 'client_id');
  }
  if (!valid.ok) {
    state.counters.rejected++;
    return json({ error: valid.error, node_errors: valid.nodeErrors }, 400);
  }
  const extra = (extraData !== null && typeof extraData === 'object' ? extraData : {}) as JsonObject;
  const sensitive: JsonObject = {};
  for (const key of SENSITIVE_EXTRA_DATA_KEYS) {
    if (!(key in extra)) continue;
    sensitive[key] = extra[key];
    Reflect.deleteProperty(extra, key);
  }
  const item: SimQueueItem = {
    number,
    promptId,
    prompt: prompt as SimPrompt,
    extraData: extra,
    outputsToExecute: valid.outputs,
    sensitive,
  };
  state.queue.put(item);
  state.counters.submitted++;
  return json({ prompt_id: promptId, number, node_errors: valid.nodeErrors });
}

function rejected(state: SimHttpState, error: { type: string; message: string; details: string }): HttpReply {
  state.counters.rejected++;
  return json({ error: { ...error, extra_info: {} }, node_errors: {} }, 400);
}

/** A `validation-error` fault turns a valid prompt into a failed one, shaped like a custom validation failure. */
function injectValidationFault(state: SimHttpState, prompt: JsonObject, valid: ValidationResult): ValidationResult {
  if (!valid.ok) return valid;
  const fault = state.faults.take('validation-error');
  if (!fault) return valid;
  const nodeId = fault.nodeId ?? Object.keys(prompt)[0];
  const node = prompt[nodeId];
  return {
    ok: false,
    error: {
      type: 'prompt_outputs_failed_validation',
      message: 'Prompt outputs failed validation',
      details: '',
      extra_info: {},
    },
    nodeErrors: {
      [nodeId]: {
        errors: [
          {
            type: 'custom_validation_failed',
            message: 'Custom validation failed for node',
            details: fault.message ?? 'simulated validation failure',
            extra_info: {},
          },
        ],
        dependent_outputs: valid.outputs,
        class_type: node === undefined ? null : getItem(node, 'class_type'),
      },
    },
  };
}
