import {
  ComfyExecutionError,
  ComfyUiError,
  ComfyValidationError,
  PromptWentMissingError,
} from '../comfyui/comfyui.errors';
import { BlobStoreFullError, BlobStoreUnavailableError } from '../../../blobs/blob-errors';
import { ReplicasUnconfirmedError } from '../../../redis/replica-ack';
import { ExecutionError } from './generation-executor';

/**
 * One place that turns ComfyUI failures into job verdicts and words a user can read. Validation errors and node
 * errors are the request's fault (not retried); out-of-memory, lost prompts and unreachable servers are the
 * fleet's (retried elsewhere).
 */
export function toExecutionError(err: unknown): ExecutionError {
  if (err instanceof ExecutionError) return err;
  if (err instanceof ComfyValidationError) {
    const nodes = err.nodeErrors.map((n) => `${n.classType} (node ${n.nodeId}): ${n.messages.join('; ')}`);
    const detail = nodes.length > 0 ? nodes.join(' | ') : err.message;
    return new ExecutionError('comfyui_validation', `ComfyUI rejected the workflow: ${detail}`, false, { cause: err });
  }
  if (err instanceof ComfyExecutionError) {
    const oom = /out of memory|OutOfMemory|CUDA error/i.test(err.message);
    return new ExecutionError(
      oom ? 'comfyui_out_of_memory' : 'comfyui_execution_error',
      `ComfyUI failed while running the workflow: ${err.message}`,
      oom,
      { cause: err },
    );
  }
  if (err instanceof PromptWentMissingError) {
    return new ExecutionError('comfyui_prompt_lost', 'ComfyUI lost the prompt (restarted?).', true, { cause: err });
  }
  if (err instanceof ComfyUiError) {
    return new ExecutionError('comfyui_unavailable', `ComfyUI call failed: ${err.message}`, err.retriable, {
      cause: err,
    });
  }
  // The image store is ours, not the request's: a job is never marked done without its image, and is retried.
  if (err instanceof BlobStoreUnavailableError) {
    return new ExecutionError('blob_store_unavailable', err.message, true, { cause: err });
  }
  // The primary changed before the replicas confirmed the placement: claimed again on the new one, then placed.
  if (err instanceof ReplicasUnconfirmedError) {
    return new ExecutionError(
      'redis_replicas_unconfirmed',
      `Redis replicas did not confirm the placement: ${err.message}`,
      true,
      { cause: err },
    );
  }
  if (err instanceof BlobStoreFullError)
    return new ExecutionError('blob_store_full', err.message, true, { cause: err });
  return new ExecutionError('internal', err instanceof Error ? err.message : String(err), true, { cause: err });
}
