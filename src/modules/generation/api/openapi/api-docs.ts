import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** The service's version from its package.json, found upwards from here (src/, dist/ or a transpiled copy). */
function packageVersion(): string {
  let dir = __dirname;
  for (let depth = 0; depth < 8; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'comfy-relay' && pkg.version) return pkg.version;
    } catch {
      // not here: look one folder up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
