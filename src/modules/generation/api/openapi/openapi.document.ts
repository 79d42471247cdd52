import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import type { WorkflowCatalog, WorkflowInputSummary, WorkflowSummary } from '../../../../workflows';

export const BEARER_AUTH = 'apiKey';

/**
 * The OpenAPI 3 document of the HTTP API, from the controllers' and DTOs' decorators, plus what only the running
 * service knows: the installed workflows, each with the schema of its inputs (a request is one of them, told
 * apart by `workflow`).
 */
export function buildOpenApiDocument(app: INestApplication, catalog: WorkflowCatalog, version: string): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('comfy-relay')
    .setDescription(
      'ComfyUI image generation as jobs: submit, follow (poll or Server-Sent Events), fetch the result, cancel. ' +
        'Errors are JSON `{statusCode, error, message, field?, fields?, details?}`.',
    )
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'one of API_KEYS (when set)' }, BEARER_AUTH)
    .build();
  const document = SwaggerModule.createDocument(app, config);
  addWorkflowRequests(document, catalog.list());
  return document;
}

function addWorkflowRequests(document: OpenAPIObject, workflows: readonly WorkflowSummary[]): void {
  const schemas = (document.components ??= {}).schemas ?? (document.components.schemas = {});
  const variants: { $ref: string }[] = [];
  const mapping: Record<string, string> = {};
  for (const workflow of workflows) {
    const inputsName = `Inputs_${workflow.name}`;
    const requestName = `GenerationRequest_${workflow.name}`;
    schemas[inputsName] = inputsSchema(workflow);
    schemas[requestName] = {
      type: 'object',
      description: workflow.description,
      required: ['workflow'],
      additionalProperties: false,
      properties: {
        workflow: { type: 'string', enum: [workflow.name] },
        inputs: { $ref: `#/components/schemas/${inputsName}` },
        priority: { type: 'boolean', description: 'the priority tier: only for keys in API_PRIORITY_KEYS (else 403)' },
      },
    };
    variants.push({ $ref: `#/components/schemas/${requestName}` });
    mapping[workflow.name] = `#/components/schemas/${requestName}`;
  }
  const submit = document.paths['/v1/generations']?.post;
  if (submit && variants.length > 0) {
    submit.requestBody = {
      required: true,
      content: {
        'application/json': { schema: { oneOf: variants, discriminator: { propertyName: 'workflow', mapping } } },
      },
    };
  }
}

function inputsSchema(workflow: WorkflowSummary): SchemaObject {
  const properties: Record<string, SchemaObject> = {};
  for (const input of workflow.inputs) properties[input.name] = inputSchema(input);
  const required = workflow.inputs.filter((i) => i.required).map((i) => i.name);
  return {
    type: 'object',
    additionalProperties: false,
    properties,
    ...(required.length > 0 ? { required } : {}),
  };
}

function inputSchema(input: WorkflowInputSummary): SchemaObject {
  const common: SchemaObject = {
    ...(input.description ? { description: input.description } : {}),
    ...(input.default !== undefined ? { default: input.default } : {}),
    ...(input.examples ? { examples: [...input.examples] } : {}),
  };
  switch (input.type) {
    case 'string':
      return {
        type: 'string',
        ...common,
        ...(input.minLength !== undefined ? { minLength: input.minLength } : {}),
        ...(input.maxLength !== undefined ? { maxLength: input.maxLength } : {}),
        ...(input.pattern ? { pattern: input.pattern } : {}),
        ...(input.enum ? { enum: [...input.enum] } : {}),
      };
    case 'integer':
    case 'number': {
      const numeric: SchemaObject = {
        type: input.type,
        ...(input.min !== undefined ? { minimum: input.min } : {}),
        ...(input.max !== undefined ? { maximum: input.max } : {}),
        ...(input.multipleOf !== undefined ? { multipleOf: input.multipleOf } : {}),
      };
      // An integer seed may be "random": a fresh seed per run.
      if (input.type === 'integer' && input.default === 'random') {
        return { ...common, oneOf: [numeric, { type: 'string', enum: ['random'] }] };
      }
      return { ...numeric, ...common };
    }
    case 'boolean':
      return { type: 'boolean', ...common };
    case 'image':
      return {
        type: 'string',
        format: 'byte',
        ...common,
        description: `${input.description ? `${input.description} — ` : ''}a PNG/JPEG/WebP image, base64 or a data: URL${
          input.maxBytes ? `, at most ${input.maxBytes} bytes` : ''
        }`,
      };
  }
}
