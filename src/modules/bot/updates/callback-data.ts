import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignedAction = 'cancel' | 'regenerate';

const ACTION_CODES: Readonly<Record<SignedAction, string>> = { cancel: 'c', regenerate: 'r' };
const CODE_ACTIONS: Readonly<Record<string, SignedAction>> = { c: 'cancel', r: 'regenerate' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** 8 bytes of HMAC: forging one for a given (job, user) takes ~2^63 tries against Telegram's rate limit. */
const SIGNATURE_BYTES = 8;

export type ParsedCallback =
  { ok: true; action: SignedAction; jobId: string } | { ok: false; reason: 'malformed' | 'forged' };

/**
 * Job buttons carry `<action>:<job id>:<signature>` in 36 bytes (callback_data allows 64): the job id as 22
 * base64url characters and an HMAC over (action, job, the user the button was made for), keyed from the bot
 * token so every replica can check it. A press by anyone else — another member of a group, or a client sending
 * hand-made callback data — fails the check and is refused before any lookup.
 */
export class CallbackSigner {
  private readonly key: Buffer;

  constructor(botToken: string) {
    this.key = createHmac('sha256', botToken).update('comfy-relay callback-data v1').digest();
  }

  sign(action: SignedAction, jobId: string, userId: number): string {
    const id = compactUuid(jobId);
    return `${ACTION_CODES[action]}:${id}:${this.signature(action, id, userId)}`;
  }

  verify(data: string, userId: number): ParsedCallback {
    const match = /^([cr]):([A-Za-z0-9_-]{22}):([A-Za-z0-9_-]{11})$/.exec(data);
    const action = match ? CODE_ACTIONS[match[1]] : undefined;
    if (!match || !action) return { ok: false, reason: 'malformed' };
    const jobId = expandUuid(match[2]);
    if (!jobId) return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.signature(action, match[2], userId));
    const given = Buffer.from(match[3]);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'forged' };
    return { ok: true, action, jobId };
  }

  private signature(action: SignedAction, compactId: string, userId: number): string {
    return createHmac('sha256', this.key)
      .update(`${action}|${compactId}|${userId}`)
      .digest()
      .subarray(0, SIGNATURE_BYTES)
      .toString('base64url');
  }
}

function compactUuid(uuid: string): string {
  if (!UUID.test(uuid)) throw new Error(`not a job id: ${uuid}`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex').toString('base64url');
}

function expandUuid(compact: string): string | undefined {
  const bytes = Buffer.from(compact, 'base64url');
  if (bytes.length !== 16) return undefined;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
