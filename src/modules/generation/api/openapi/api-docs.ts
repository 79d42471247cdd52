import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { SwaggerModule } from '@nestjs/swagger';
import { WorkflowCatalog } from '../../../../workflows';
import { buildOpenApiDocument } from './openapi.document';

/**
 * Serves the API's description with the api role: `GET /openapi.json` (OpenAPI 3) and a browsable `GET /docs`
 * (Swagger UI). Public like /health: it says what the API is, nothing about its jobs.
 */
export function mountApiDocs(app: INestApplication): void {
  const document = buildOpenApiDocument(app, app.get(WorkflowCatalog), packageVersion());
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'openapi.json',
    raw: ['json'],
    customSiteTitle: 'comfy-relay API',
  });
}

function packageVersion(): string {
  // src/… and dist/… sit at the same depth below the package root.
  const path = join(__dirname, '..', '..', '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? '0.0.0';
}
