import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/**
 * The shapes the HTTP API answers with, for the OpenAPI document (GET /openapi.json). Classes only because
 * @nestjs/swagger reads its schemas from decorated classes; the controller returns plain objects of these shapes,
 * and test/api/openapi.spec.ts checks real answers against them.
 */
export class FieldErrorModel {
  @ApiProperty({ example: 'inputs.width' }) field!: string;
  @ApiProperty({ example: 'must be at most 2048' }) message!: string;
}

export class ErrorBodyModel {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ description: 'machine-readable code', example: 'invalid_request' }) error!: string;
  @ApiProperty({ example: 'inputs.width: must be at most 2048' }) message!: string;
  @ApiPropertyOptional({ description: 'the first field at fault (400, 403)', example: 'inputs.width' }) field?: string;
  @ApiPropertyOptional({ type: [FieldErrorModel], description: 'every field at fault (400, 403)' })
  fields?: FieldErrorModel[];
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'code-specific details' })
  details?: Record<string, unknown>;
}

export class SubmitAcceptedModel {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['queued'] }) status!: 'queued';
  @ApiProperty({ description: 'true when an Idempotency-Key replay returned an earlier job' }) duplicate!: boolean;
  @ApiProperty({ description: '1 = next; 0 = a worker has taken it already' }) position!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'seconds until it is expected to finish' })
  etaSeconds!: number | null;
  @ApiProperty({ example: '/v1/generations/4f1c…' }) statusUrl!: string;
}

export class ProgressModel {
  @ApiProperty() value!: number;
  @ApiProperty() max!: number;
  @ApiProperty() percent!: number;
  @ApiPropertyOptional() stage?: string;
}

export class JobErrorModel {
  @ApiProperty({ example: 'comfyui_out_of_memory' }) code!: string;
  @ApiProperty() message!: string;
  @ApiPropertyOptional() retriable?: boolean;
}

export class ResultRefModel {
  @ApiProperty() index!: number;
  @ApiProperty({ example: '/v1/generations/4f1c…/result?index=0' }) url!: string;
  @ApiProperty({ example: 'image/png' }) type!: string;
  @ApiProperty() size!: number;
  @ApiProperty() sha256!: string;
}

export class GenerationModel {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiPropertyOptional() workflow?: string;
  @ApiProperty({ enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] }) status!: string;
  @ApiPropertyOptional({ description: '1 = next; 0 = taken by a worker, waiting in ComfyUI' }) position?: number;
  @ApiPropertyOptional({ type: Number, nullable: true }) etaSeconds?: number | null;
  @ApiPropertyOptional({ type: ProgressModel }) progress?: ProgressModel;
  @ApiPropertyOptional({ type: JobErrorModel }) error?: JobErrorModel;
  @ApiPropertyOptional({ type: [ResultRefModel] }) result?: ResultRefModel[];
  @ApiPropertyOptional({ format: 'date-time' }) createdAt?: string;
  @ApiPropertyOptional({ format: 'date-time' }) startedAt?: string;
  @ApiPropertyOptional({ format: 'date-time' }) finishedAt?: string;
  @ApiPropertyOptional() cancelRequested?: boolean;
}

export class CancelAcceptedModel {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['cancelled', 'cancelling'] }) status!: string;
}

export class WorkflowInputModel {
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['string', 'integer', 'number', 'boolean', 'image'] }) type!: string;
  @ApiProperty() required!: boolean;
  @ApiPropertyOptional({ oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] }) default?: unknown;
  @ApiPropertyOptional() description?: string;
  @ApiPropertyOptional() min?: number;
  @ApiPropertyOptional() max?: number;
  @ApiPropertyOptional() minLength?: number;
  @ApiPropertyOptional() maxLength?: number;
  @ApiPropertyOptional({ type: [String] }) enum?: string[];
  @ApiPropertyOptional() maxBytes?: number;
}

export class WorkflowModel {
  @ApiProperty() name!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ type: [WorkflowInputModel] }) inputs!: WorkflowInputModel[];
}

export class WorkflowListModel {
  @ApiProperty({ type: [WorkflowModel] }) workflows!: WorkflowModel[];
}
