import { IsBoolean, IsObject, IsOptional, IsString, Matches } from 'class-validator';

export class CreateGenerationDto {
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    message: 'must be a workflow name such as "txt2img" (see GET /v1/workflows)',
  })
  workflow!: string;

  /** Validated against the workflow's declared inputs by the generation service (errors name inputs.<name>). */
  @IsOptional()
  @IsObject({ message: 'must be an object of workflow inputs' })
  inputs?: Record<string, unknown>;

  @IsOptional()
  @IsBoolean()
  priority?: boolean;
}
