import type { ClientFacingError } from '../../../common/client-facing.error';

/**
 * Domain errors of the generation commands. Each says which HTTP status answers it (the HTTP layer maps any
 * ClientFacingError without knowing this module); the bot maps them to its own words.
 */
export class GenerationError extends Error implements ClientFacingError {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export interface FieldError {
  field: string;
  message: string;
}

export class InvalidRequestError extends GenerationError {
  constructor(readonly fields: readonly FieldError[]) {
    super('invalid_request', fields.map((f) => `${f.field}: ${f.message}`).join('; '), undefined, 400);
  }
}

export class UserLimitError extends GenerationError {
  constructor(
    readonly active: number,
    readonly limit: number,
  ) {
    super(
      'too_many_active_jobs',
      `You already have ${active} active job(s); the limit is ${limit}. Wait for one to finish or cancel one.`,
      { active, limit },
      429,
    );
  }
}

/** Too many active jobs under one API key (API_KEY_MAX_ACTIVE), whichever of its users they belong to. */
export class ApiKeyLimitError extends GenerationError {
  constructor(
    readonly active: number,
    readonly limit: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      'too_many_active_jobs',
      `This API key already has ${active} active job(s); its limit is ${limit}. Wait for one to finish or cancel one.`,
      { active, limit, scope: 'api_key' },
      429,
    );
  }
}

/** `priority: true` from a caller whose key is not in API_PRIORITY_KEYS. */
export class PriorityNotAllowedError extends GenerationError {
  readonly fields = [
    { field: 'priority', message: 'the priority tier is only for API keys listed in API_PRIORITY_KEYS' },
  ] as const;

  constructor() {
    super(
      'priority_not_allowed',
      'priority: the priority tier is only for API keys listed in API_PRIORITY_KEYS',
      undefined,
      403,
    );
  }
}

export class IdempotencyConflictError extends GenerationError {
  constructor(readonly jobId: string) {
    super('idempotency_key_reused', 'This Idempotency-Key was already used for a different request.', { jobId }, 422);
  }
}

export class JobNotFoundError extends GenerationError {
  constructor(jobId: string) {
    super('not_found', `No generation with id ${jobId}.`, undefined, 404);
  }
}

export class JobFinishedError extends GenerationError {
  constructor(
    jobId: string,
    readonly status: string,
  ) {
    super('already_finished', `Generation ${jobId} already ${status}.`, { status }, 409);
  }
}

export class DrainingError extends GenerationError {
  constructor() {
    super('draining', 'The service is not taking new jobs right now (drain mode). Try again later.', undefined, 503);
  }
}

/**
 * The service cannot take a job safely right now (Redis memory above its watermark, the image store full or
 * down): refused up front with 503 + Retry-After rather than accepted and lost later in the pipeline.
 */
export class ServiceOverloadedError extends GenerationError {
  constructor(
    readonly reason: 'redis_memory' | 'blob_store_full' | 'blob_store_unavailable',
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('overloaded', message, { reason }, 503);
  }
}

/**
 * REDIS_MIN_REPLICAS_ACK replicas did not confirm the job in time: it is not answered 202, since a failover now could
 * forget it. It may still have been kept: a retry with the same Idempotency-Key finds it (and is answered 202 once
 * the replicas confirm it), a retry without one makes another job.
 */
export class ReplicasUnconfirmedJobError extends GenerationError {
  constructor(
    readonly wanted: number,
    readonly confirmed: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      'unavailable',
      'The job could not be stored safely right now (Redis replicas did not confirm it in time); try again shortly. ' +
        'A retry with the same Idempotency-Key finds this job if it was kept.',
      { reason: 'replicas_unconfirmed', replicas: wanted, confirmed },
      503,
    );
  }
}

/**
 * No ComfyUI instance can run the job (a node class or a model file it names is on none of them): refused at
 * submit (422) instead of being sent to fail. Names each missing piece and the instances checked.
 */
export class NoCapableInstanceError extends GenerationError {
  constructor(
    readonly missing: readonly { readonly what: string; readonly instances: readonly string[] }[],
    readonly instancesChecked: readonly string[],
  ) {
    super(
      'no_capable_instance',
      `No GPU instance can run this job: ${missing.map((m) => `${m.what} is missing on ${m.instances.join(', ')}`).join('; ')} ` +
        `(instances checked: ${instancesChecked.join(', ')}).`,
      { missing, instancesChecked },
      422,
    );
  }
}
