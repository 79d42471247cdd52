import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { ErrorBodyModel } from './api-models';

const MEANING: Record<number, string> = {
  400: 'invalid request: `field`/`fields` name what is wrong',
  401: 'missing or wrong API key',
  403: '`priority: true` from a key not in API_PRIORITY_KEYS (`field`: priority)',
  404: 'no such job (or not yours)',
  409: 'the job is not in a state for this (already finished; no result yet)',
  410: 'the result has expired from the image store',
  413: 'the body is over the size limit',
  422: 'an Idempotency-Key reused with another body',
  429: 'too many active jobs for this user, or for this API key (`details.scope`: api_key) (`Retry-After`)',
  503: 'draining, overloaded (Redis memory, image store), or not confirmed by Redis replicas: retry after `Retry-After`',
};

/** The JSON error body every listed status answers with (the HTTP error filter's shape). */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ErrorBodyModel),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: MEANING[status] ?? 'error',
        content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorBodyModel) } } },
      }),
    ),
  );
}
