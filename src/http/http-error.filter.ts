import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import type { Logger } from '../common/logger';
import { reportError } from '../common/observability/observability.hooks';
import { isClientFacingError } from '../common/client-facing.error';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  field?: string;
  fields?: { field: string; message: string }[];
  details?: Record<string, unknown>;
}

/**
 * Every HTTP error as JSON `{ statusCode, error, message, field? }`. Client mistakes keep their 4xx; anything
 * unexpected is a 500 with a generic message (the details go to the log, never to the caller).
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const response = host.switchToHttp().getResponse<Response>();
    if (exception instanceof HttpException && isHealthCheckBody(exception.getResponse())) {
      // terminus' 503 body ({ status, info, error, details }) is itself the contract of /health: keep it.
      response.status(exception.getStatus()).json(exception.getResponse());
      return;
    }
    const body = this.toBody(exception);
    if (response.headersSent) {
      response.end();
      return;
    }
    if (body.statusCode === 429) response.setHeader('Retry-After', '10');
    if (isClientFacingError(exception) && exception.retryAfterSeconds !== undefined) {
      response.setHeader('Retry-After', String(exception.retryAfterSeconds));
    }
    if (body.statusCode === 401) response.setHeader('WWW-Authenticate', 'Bearer');
    response.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (isClientFacingError(exception)) {
      const body: ErrorBody = { statusCode: exception.httpStatus, error: exception.code, message: exception.message };
      if (exception.fields) {
        body.fields = [...exception.fields];
        body.field = exception.fields[0]?.field;
      }
      if (exception.details) body.details = exception.details;
      return body;
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const response = exception.getResponse();
      const fromResponse = typeof response === 'object' ? (response as Partial<ErrorBody>) : {};
      return {
        statusCode,
        error: snake(typeof fromResponse.error === 'string' ? fromResponse.error : (HttpStatus[statusCode] ?? 'error')),
        message: typeof response === 'string' ? response : stringMessage(fromResponse.message, exception.message),
        ...(fromResponse.field ? { field: fromResponse.field } : {}),
        ...(fromResponse.fields ? { fields: fromResponse.fields } : {}),
      };
    }
    const bodyParserError = asBodyParserError(exception);
    if (bodyParserError) return bodyParserError;
    this.log.error({ err: exception instanceof Error ? exception.stack : String(exception) }, 'unhandled error');
    reportError(exception, { where: 'http' }); // Sentry, when configured; client mistakes (4xx) never get here
    return { statusCode: 500, error: 'internal_error', message: 'Internal server error' };
  }
}

function isHealthCheckBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'details' in body && 'status' in body && 'info' in body;
}

/** body-parser's own errors (bad JSON, too large, wrong charset) carry `status` and `type`. */
export function asBodyParserError(exception: unknown): ErrorBody | undefined {
  if (typeof exception !== 'object' || exception === null) return undefined;
  const { status, type, expose } = exception as { status?: unknown; type?: unknown; expose?: unknown };
  // body-parser marks its errors with a `type`; some (a failed gunzip) come as plain http-errors with `expose`.
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (typeof type !== 'string' && expose !== true) return undefined;
  const messages: Record<string, string> = {
    'entity.parse.failed': 'Request body is not valid JSON.',
    'entity.too.large': 'Request body is too large.',
    'encoding.unsupported': 'Unsupported content encoding.',
    'charset.unsupported': 'Unsupported charset.',
  };
  return {
    statusCode: status,
    error: type === 'entity.too.large' ? 'payload_too_large' : 'bad_request',
    message: (typeof type === 'string' ? messages[type] : undefined) ?? 'Malformed request body.',
    field: 'body',
  };
}

function stringMessage(message: unknown, fallback: string): string {
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  return fallback;
}

/** 'Not Found' and NOT_FOUND both become 'not_found', like our own error codes. */
function snake(value: string): string {
  return value
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_');
}
