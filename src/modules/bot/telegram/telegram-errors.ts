/**
 * What a failed Bot API call means for the caller:
 * - not-modified: an edit that changes nothing (400 "message is not modified") — success for our purposes;
 * - rate-limited: 429, wait `retryAfterMs` and retry (or drop the call if it was droppable);
 * - unreachable: 403 (blocked, kicked, deactivated) or 400 "chat not found" — stop sending to this chat;
 * - gone: the message to edit/delete no longer exists, or can't be edited — final, retrying will not help;
 * - bad-request: any other 4xx — final for this payload;
 * - unauthorized: 401, the token is wrong or revoked;
 * - transient: 5xx, network errors, timeouts — retry (at once when Telegram answered, see `definite`).
 */
export type TelegramFailureKind =
  'not-modified' | 'rate-limited' | 'unreachable' | 'gone' | 'bad-request' | 'unauthorized' | 'transient';

export class TelegramCallError extends Error {
  constructor(
    readonly kind: TelegramFailureKind,
    readonly method: string,
    message: string,
    readonly code?: number,
    readonly retryAfterMs?: number,
    /** True when Telegram certainly did not perform the call (it answered with an error, or nothing was sent). */
    readonly definite = true,
  ) {
    super(message);
    this.name = 'TelegramCallError';
  }
}

interface TelegramErrorShape {
  response: { error_code: number; description?: string; parameters?: { retry_after?: number } };
}

function isTelegramError(err: unknown): err is TelegramErrorShape {
  if (typeof err !== 'object' || err === null || !('response' in err)) return false;
  const response = err.response;
  return (
    typeof response === 'object' &&
    response !== null &&
    typeof (response as { error_code?: unknown }).error_code === 'number'
  );
}

/** Maps whatever telegraf threw to a TelegramCallError whose message is scrubbed of secrets. */
export function classifyTelegramError(
  err: unknown,
  method: string,
  scrub: (text: string) => string,
): TelegramCallError {
  if (err instanceof TelegramCallError) return err;
  if (isTelegramError(err)) {
    const { error_code: code, description = '', parameters } = err.response;
    const text = scrub(`${method}: ${code} ${description}`);
    const lower = description.toLowerCase();
    if (code === 429) {
      const retryAfterMs = Math.max(1, parameters?.retry_after ?? 5) * 1000;
      return new TelegramCallError('rate-limited', method, text, code, retryAfterMs);
    }
    if (code === 400 && lower.includes('message is not modified')) {
      return new TelegramCallError('not-modified', method, text, code);
    }
    if (code === 403 || (code === 400 && lower.includes('chat not found'))) {
      return new TelegramCallError('unreachable', method, text, code);
    }
    if (
      code === 400 &&
      (lower.includes('message to edit not found') ||
        lower.includes('message to delete not found') ||
        lower.includes("message can't be edited") ||
        lower.includes("message can't be deleted"))
    ) {
      return new TelegramCallError('gone', method, text, code);
    }
    if (code === 401) return new TelegramCallError('unauthorized', method, text, code);
    // A 5xx is an answer: Telegram (or its front end) refused the call, so it is retried at once. Only 504 says
    // that nobody answered in time — the call may have been carried out after all: not definite.
    if (code >= 500) return new TelegramCallError('transient', method, text, code, undefined, code !== 504);
    return new TelegramCallError('bad-request', method, text, code);
  }
  const name = err instanceof Error ? err.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(message);
  return new TelegramCallError(
    'transient',
    method,
    scrub(`${method}: ${name}: ${message}`),
    undefined,
    undefined,
    refused,
  );
}

/** A file the bot was asked to read is over the size it accepts (declared, or found while downloading). */
export class FileTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`file is larger than ${limit} bytes`);
    this.name = 'FileTooLargeError';
  }
}
