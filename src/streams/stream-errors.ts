/**
 * A handler's outcome is explicit: return → ack; throw RetryLaterError (or any other error) → the entry
 * stays pending and is retried after CLAIM_IDLE_MS until MAX_DELIVERIES; throw DeadLetterError → it goes
 * to the DLQ at once, whatever deliveries are left (like BullMQ's UnrecoverableError).
 *
 * With `inPlaceAfterMs`, the consumer retries the entry itself: it keeps the entry (heartbeat included) and its
 * concurrency slot, waits that long, takes it again as a new delivery and runs it once more. Entries read
 * later do not pass it in this consumer, so a job retried after a fault of the fleet keeps its place.
 */
export class RetryLaterError extends Error {
  readonly inPlaceAfterMs?: number;

  constructor(message: string, options?: { cause?: unknown; inPlaceAfterMs?: number }) {
    super(message, options);
    this.name = 'RetryLaterError';
    this.inPlaceAfterMs = options?.inPlaceAfterMs;
  }
}

/** The delay of an in-place retry, when the error asks for one. */
export function inPlaceRetryDelay(err: unknown): number | undefined {
  if (!(err instanceof RetryLaterError) || err.inPlaceAfterMs === undefined) return undefined;
  return Math.max(0, err.inPlaceAfterMs);
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

/**
 * The handler cannot do this entry's work here but another consumer of its group can: the consumer passes the
 * entry to `toConsumer` (a new delivery, owner-checked) and wakes it, instead of acking or retrying it. Only
 * for groups whose consumers listen for hand-offs (consumer-groups.ts); elsewhere it is an ordinary failure.
 */
export class HandOffError extends Error {
  constructor(
    readonly toConsumer: string,
    readonly reason: string,
  ) {
    super(`handed off to ${toConsumer}: ${reason}`);
    this.name = 'HandOffError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && 'message' in err) return String(err.message);
  return String(err);
}
