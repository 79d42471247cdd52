import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';

export interface AuthenticatedRequest extends Request {
  /** `api:<key fingerprint>` (or `api:anonymous` without API_KEYS): scopes idempotency keys and user limits. */
  callerId?: string;
}

/**
 * Bearer auth for /v1/* when API_KEYS is set. Keys are compared as SHA-256 digests with timingSafeEqual, and
 * every configured key is checked, so neither the key's content nor its position leaks through timing.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly digests: { digest: Buffer; fingerprint: string }[];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.digests = config.apiKeys.map((key) => {
      const digest = sha256(key);
      return { digest, fingerprint: digest.toString('hex').slice(0, 12) };
    });
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (this.digests.length === 0) {
      request.callerId = 'api:anonymous';
      return true;
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new UnauthorizedException('Missing "Authorization: Bearer <API key>" header.');
    const presented = sha256(match[1]);
    let found: string | undefined;
    for (const { digest, fingerprint } of this.digests) {
      if (timingSafeEqual(digest, presented) && found === undefined) found = fingerprint;
    }
    if (!found) throw new UnauthorizedException('Invalid API key.');
    request.callerId = `api:${found}`;
    return true;
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
