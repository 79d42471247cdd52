import { createHash, timingSafeEqual } from 'node:crypto';
import type { AppConfig } from '../config/app-config';

/** A caller's key as the service knows it: never the key itself. */
export interface ApiKeyIdentity {
  /** First 12 hex digits of the key's SHA-256: scopes jobs, idempotency keys and per-key caps. */
  readonly fingerprint: string;
  /** In API_PRIORITY_KEYS: may ask for `priority: true`. */
  readonly priority: boolean;
}

export type KeyCheck =
  | { readonly kind: 'none-configured' }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'valid'; readonly key: ApiKeyIdentity };

/**
 * The configured API keys, held as SHA-256 digests. A presented key is hashed and compared with every digest by
 * timingSafeEqual (all of them, whatever matched), so neither its content nor its position leaks through timing.
 */
export class ApiKeyRing {
  private readonly entries: { digest: Buffer; key: ApiKeyIdentity }[];

  constructor(config: Pick<AppConfig, 'apiKeys' | 'apiPriorityKeys'>) {
    const priority = new Set((config.apiPriorityKeys ?? []).map((k) => sha256(k).toString('hex')));
    this.entries = config.apiKeys.map((secret) => {
      const digest = sha256(secret);
      const hex = digest.toString('hex');
      return { digest, key: { fingerprint: hex.slice(0, 12), priority: priority.has(hex) } };
    });
  }

  get configured(): boolean {
    return this.entries.length > 0;
  }

  /** Checks an `Authorization` header value (`Bearer <key>`). */
  check(authorization: string | undefined): KeyCheck {
    if (!this.configured) return { kind: 'none-configured' };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return { kind: 'missing' };
    const presented = sha256(match[1]);
    let found: ApiKeyIdentity | undefined;
    for (const { digest, key } of this.entries) {
      if (timingSafeEqual(digest, presented) && found === undefined) found = key;
    }
    return found ? { kind: 'valid', key: found } : { kind: 'invalid' };
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
