/**
 * An error the caller caused or has to wait out, and how an HTTP answer says it: feature modules' errors carry it,
 * so the HTTP layer (src/http) maps them without knowing any module.
 */
export interface ClientFacingError extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly details?: Record<string, unknown>;
  /** Field-level reasons of a bad request (400). */
  readonly fields?: readonly { field: string; message: string }[];
  /** Sent as Retry-After. */
  readonly retryAfterSeconds?: number;
}

export function isClientFacingError(err: unknown): err is ClientFacingError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ClientFacingError>).code === 'string' &&
    typeof (err as Partial<ClientFacingError>).httpStatus === 'number'
  );
}
