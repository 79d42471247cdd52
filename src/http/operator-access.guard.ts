import type { IncomingHttpHeaders } from 'node:http';
import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { isLoopbackAddress } from '../config/listen-address';
import { ApiKeyRing } from './api-key-ring';

export type OperatorAccess = 'allow' | 'unauthorized' | 'forbidden';

/** Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its socket says. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/**
 * Who may read /metrics and the detailed /health (queue depth, stream names, instance URLs, error texts):
 *   - anyone with API_AUTH=none (the operator opened everything on purpose);
 *   - a request from this machine (loopback peer) that no proxy forwarded — a local Prometheus, `curl` on the
 *     host, the container's own healthcheck;
 *   - a request with a valid `Authorization: Bearer <key>` of API_KEYS (Prometheus elsewhere: scrape with a key).
 * Everyone else: 401 when keys exist (present one), 403 when none does (no key could help).
 * The peer is the socket's address (Express' trust proxy is off: X-Forwarded-For is never believed, only seen).
 */
export function operatorAccess(
  request: { remoteAddress: string | undefined; headers: IncomingHttpHeaders },
  ring: ApiKeyRing,
  auth: 'keys' | 'none',
): OperatorAccess {
  if (auth === 'none') return 'allow';
  const forwarded = FORWARDING_HEADERS.some((h) => request.headers[h] !== undefined);
  if (!forwarded && isLoopbackAddress(request.remoteAddress)) return 'allow';
  const check = ring.check(request.headers.authorization);
  if (check.kind === 'valid') return 'allow';
  return check.kind === 'none-configured' ? 'forbidden' : 'unauthorized';
}

/** Guards /metrics and /health (not /health/live and /health/ready, which stay open for probes). */
@Injectable()
export class OperatorAccessGuard implements CanActivate {
  private readonly ring: ApiKeyRing;
  private readonly auth: 'keys' | 'none';

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.ring = new ApiKeyRing(config);
    this.auth = config.http.auth;
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    const verdict = operatorAccess(
      { remoteAddress: request.socket.remoteAddress, headers: request.headers },
      this.ring,
      this.auth,
    );
    if (verdict === 'allow') return true;
    if (verdict === 'unauthorized') {
      throw new UnauthorizedException(
        'This endpoint answers local requests, or remote ones with "Authorization: Bearer <API key>".',
      );
    }
    throw new ForbiddenException(
      'This endpoint answers only requests from this machine (API_KEYS is unset, so no key can be presented).',
    );
  }
}
