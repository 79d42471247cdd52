import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsObject, IsOptional, IsString, Matches } from 'class-validator';

/** The body of POST /v1/generations; the OpenAPI document narrows `inputs` per installed workflow. */
export class CreateGenerationDto {
  @ApiProperty({ description: 'an installed workflow (GET /v1/workflows)', example: 'txt2img' })
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    message: 'must be a workflow name such as "txt2img" (see GET /v1/workflows)',
  })
  workflow!: string;

  /** Validated against the workflow's declared inputs by the generation service (errors name inputs.<name>). */
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "the workflow's inputs" })
  @IsOptional()
  @IsObject({ message: 'must be an object of workflow inputs' })
  inputs?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'the priority tier: only for keys in API_PRIORITY_KEYS (else 403)' })
  @IsOptional()
  @IsBoolean()
  priority?: boolean;
}
