import { pipeline } from 'node:stream/promises';
import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
  HttpException,
  HttpStatus,
  BadRequestException,
  Inject,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiErrors } from './openapi/api-errors.decorator';
import { CancelAcceptedModel, GenerationModel, SubmitAcceptedModel, WorkflowListModel } from './openapi/api-models';
import { BEARER_AUTH } from './openapi/openapi.document';
import { BlobStoreUnavailableError } from '../../../blobs/blob-errors';
import { PriorityNotAllowedError, ServiceOverloadedError } from '../commands/generation.errors';
import { BLOB_STORE, type BlobStore } from '../../../blobs/blob-store';
import { WorkflowCatalog, type WorkflowSummary } from '../../../workflows';
import { GenerationService, type SubmitResult } from '../commands/generation.service';
import { ApiKeyGuard, type AuthenticatedRequest } from './api-key.guard';
import { CreateGenerationDto } from './create-generation.dto';
import { GenerationEventsSse } from './generation-events.sse';
import { GenerationQueryService, type GenerationResource } from './generation-query.service';
import type { JobView } from '../projection/job-view';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const USER_ID = /^[A-Za-z0-9_.:@-]{1,64}$/;

@Controller('v1')
@UseGuards(ApiKeyGuard)
@ApiTags('generations')
@ApiBearerAuth(BEARER_AUTH)
@ApiErrors(401)
export class GenerationController {
  constructor(
    private readonly generations: GenerationService,
    private readonly queries: GenerationQueryService,
    private readonly sse: GenerationEventsSse,
    private readonly catalog: WorkflowCatalog,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  @Get('workflows')
  @ApiOperation({ summary: 'The installed workflows and their inputs' })
  @ApiOkResponse({ type: WorkflowListModel })
  workflows(): { workflows: WorkflowSummary[] } {
    return { workflows: this.catalog.list() };
  }

  @Post('generations')
  @HttpCode(202)
  @ApiOperation({ summary: 'Submit a job', description: 'Answers at once with its id, queue position and ETA.' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'same key and body → the same job (24 h)' })
  @ApiHeader({ name: 'X-User-Id', required: false, description: 'the end user under your key (per-user limit)' })
  @ApiAcceptedResponse({ type: SubmitAcceptedModel, description: 'accepted; `Location` names the job' })
  @ApiErrors(400, 403, 413, 422, 429, 503)
  async create(
    @Body() body: CreateGenerationDto,
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: Response,
    @Headers('idempotency-key') idempotencyKey?: string,
    @Headers('x-user-id') userHeader?: string,
  ): Promise<SubmitResult & { statusUrl: string }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw fieldError('Idempotency-Key', 'must be 1-255 printable ASCII characters');
    }
    if (userHeader !== undefined && !USER_ID.test(userHeader)) {
      throw fieldError('X-User-Id', 'must be 1-64 characters of letters, digits and _.:@-');
    }
    // The priority tier is for entitled keys only (API_PRIORITY_KEYS); without API_KEYS nobody is entitled.
    if (body.priority === true && request.apiKey?.priority !== true) throw new PriorityNotAllowedError();
    const caller = request.callerId ?? 'api:anonymous';
    const userId = userHeader ? `${caller}:${userHeader}` : caller;
    const result = await this.generations.submit({
      workflow: body.workflow,
      inputs: body.inputs ?? {},
      userId,
      source: 'api',
      priority: body.priority,
      ...(request.apiKey ? { apiKey: request.apiKey.fingerprint } : {}),
      idempotency: idempotencyKey ? { scope: userId, key: idempotencyKey } : undefined,
    });
    const statusUrl = `/v1/generations/${result.id}`;
    response.setHeader('Location', statusUrl);
    if (result.duplicate) response.setHeader('Idempotent-Replayed', 'true');
    return { ...result, statusUrl };
  }

  @Get('generations/:id')
  @ApiOperation({ summary: "A job's status, progress, error or result links" })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiOkResponse({ type: GenerationModel })
  @ApiErrors(404)
  async get(@Param('id') id: string, @Req() request: AuthenticatedRequest): Promise<GenerationResource> {
    return this.queries.resource(await this.require(id, request));
  }

  @Get('generations/:id/events')
  @ApiOperation({
    summary: "Server-Sent Events of the job's lifecycle and progress",
    description:
      'Past events, then live ones, closed after the final one. Each `data` is `{type, jobId, status, occurredAt, ' +
      'payload}`; `status` is the job status after that event.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } })
  @ApiErrors(404)
  async events(
    @Param('id') id: string,
    @Req() request: AuthenticatedRequest,
    @Res() response: Response,
  ): Promise<void> {
    await this.sse.stream(await this.require(id, request), response);
  }

  @Get('generations/:id/result')
  @ApiOperation({ summary: 'The result image (or a 302 to a presigned URL when BLOB_S3_PRESIGN is on)' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'index', required: false, type: Number, description: 'which result image (default 0)' })
  @ApiProduces('image/png')
  @ApiOkResponse({
    description: 'the image bytes',
    content: { 'image/png': { schema: { type: 'string', format: 'binary' } } },
  })
  @ApiResponse({ status: 302, description: 'BLOB_S3_PRESIGN: redirect to the object store' })
  @ApiErrors(400, 404, 409, 410, 503)
  async result(
    @Param('id') id: string,
    @Query('index') indexParam: string | undefined,
    @Req() request: AuthenticatedRequest,
    @Res() response: Response,
  ) {
    const view = await this.require(id, request);
    if (indexParam !== undefined && !/^\d{1,4}$/.test(indexParam)) {
      throw fieldError('index', 'must be a non-negative integer');
    }
    const index = Number(indexParam ?? 0);
    if (view.status !== 'succeeded') {
      throw new HttpException(
        { statusCode: 409, error: 'not_ready', message: `Generation ${id} is ${view.status}; no result yet.` },
        HttpStatus.CONFLICT,
      );
    }
    const ref = view.result?.[index];
    if (!ref)
      throw new NotFoundException(`Generation ${id} has ${view.result?.length ?? 0} result(s); no index ${index}.`);
    if (this.blobs.presigns) {
      // BLOB_S3_PRESIGN: the bytes come straight from the object store; the URL lives no longer than the result.
      const url = await this.blobs.presignedUrl(ref);
      if (!url) throw resultExpired();
      response.setHeader('Cache-Control', 'no-store');
      response.redirect(302, url);
      return;
    }
    const opened = await this.blobs.open(ref.hash).catch((err: unknown) => {
      if (err instanceof BlobStoreUnavailableError) {
        throw new ServiceOverloadedError(
          'blob_store_unavailable',
          'The image store is unavailable; try again shortly.',
          10,
        );
      }
      throw err;
    });
    if (!opened) throw resultExpired();
    response.setHeader('Content-Type', ref.type);
    response.setHeader('Content-Length', String(opened.size || ref.size));
    response.setHeader('ETag', `"${ref.hash}"`);
    response.setHeader('Cache-Control', 'private, max-age=3600, immutable');
    response.status(200);
    // Streamed, not buffered: a 2 MB result costs the API process a socket buffer, not 2 MB per request.
    // A store failing mid-body cannot change a status already sent: the connection is cut (the client sees a
    // short body against Content-Length) and the failure is not rethrown (nothing more can be said to this client).
    await pipeline(opened.body, response).catch(() => {
      opened.body.destroy();
      response.destroy();
    });
  }

  @Post('generations/:id/cancel')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel a job: queued ones at once, running ones on their instance' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiAcceptedResponse({ type: CancelAcceptedModel })
  @ApiErrors(404, 409)
  async cancel(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    await this.require(id, request);
    return this.generations.cancel(id, request.callerId ?? 'api:anonymous');
  }

  /**
   * The job, if the caller may see it. With API_KEYS set, a key sees only the jobs it submitted (under any
   * X-User-Id); another key's job is a 404, like an unknown one, so ids leak nothing.
   */
  private async require(id: string, request: AuthenticatedRequest): Promise<JobView> {
    const view = await this.queries.find(id);
    const caller = request.callerId ?? 'api:anonymous';
    const owned =
      caller === 'api:anonymous' || view?.userId === caller || (view?.userId ?? '').startsWith(`${caller}:`);
    if (!view || !owned) throw new NotFoundException(`No generation with id ${id}.`);
    return view;
  }
}

function fieldError(field: string, message: string): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'invalid_request',
    message: `${field}: ${message}`,
    field,
    fields: [{ field, message }],
  });
}

function resultExpired(): HttpException {
  return new HttpException(
    { statusCode: 410, error: 'expired', message: 'The result has expired from the blob store.' },
    HttpStatus.GONE,
  );
}
