/**
 * A handler's outcome is explicit: return → ack; throw RetryLaterError (or any other error) → the entry
 * stays pending and is retried after CLAIM_IDLE_MS until MAX_DELIVERIES; throw DeadLetterError → it goes
 * to the DLQ at once, whatever deliveries are left (like BullMQ's UnrecoverableError).
 */
export class RetryLaterError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryLaterError';
  }
}

export class DeadLetterError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeadLetterError';
  }
}

export function isDeadLetterError(err: unknown): boolean {
  return err instanceof DeadLetterError || (err instanceof Error && err.name === 'DeadLetterError');
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && 'message' in err) return String(err.message);
  return String(err);
}
