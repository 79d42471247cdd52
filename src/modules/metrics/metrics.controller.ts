import { Controller, Get, Inject, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import type { Registry } from 'prom-client';
import { OperatorAccessGuard } from '../../http/operator-access.guard';
import { METRICS_REGISTRY } from './metrics.registry';

/**
 * `GET /metrics` in the Prometheus text format; every role serves it, to this machine or to a scraper presenting
 * one of API_KEYS as a Bearer token (OperatorAccessGuard; docs/operations.md#security).
 */
@Controller('metrics')
@UseGuards(OperatorAccessGuard)
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get()
  async metrics(@Res() res: Response): Promise<void> {
    const body = await this.registry.metrics();
    res.setHeader('Content-Type', this.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  }
}
