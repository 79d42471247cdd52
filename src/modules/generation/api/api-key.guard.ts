import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { ApiKeyRing, type ApiKeyIdentity } from '../../../http/api-key-ring';

export interface AuthenticatedRequest extends Request {
  /** `api:<key fingerprint>` (or `api:anonymous` without API_KEYS): scopes idempotency keys and user limits. */
  callerId?: string;
  /** The caller's key (fingerprint and tier); absent without API_KEYS. */
  apiKey?: ApiKeyIdentity;
}

/**
 * Bearer auth for /v1/* when API_KEYS is set (the key ring compares SHA-256 digests in constant time). Without
 * API_KEYS every caller is `api:anonymous` — the server then listens on loopback only, unless API_AUTH=none.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly ring: ApiKeyRing;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.ring = new ApiKeyRing(config);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const check = this.ring.check(request.headers.authorization);
    switch (check.kind) {
      case 'none-configured':
        request.callerId = 'api:anonymous';
        return true;
      case 'missing':
        throw new UnauthorizedException('Missing "Authorization: Bearer <API key>" header.');
      case 'invalid':
        throw new UnauthorizedException('Invalid API key.');
      case 'valid':
        request.callerId = `api:${check.key.fingerprint}`;
        request.apiKey = check.key;
        return true;
    }
  }
}
