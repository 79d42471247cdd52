import { Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';

export interface HealthContributor {
  /** The indicator's key in the /health body (e.g. `comfyui`, `telegram`). */
  key: string;
  check(): Promise<HealthIndicatorResult>;
}

/** Role modules (gpu pool, Telegram) register their indicators here, so /health shows only what runs. */
@Injectable()
export class HealthContributors {
  private readonly contributors: HealthContributor[] = [];

  register(contributor: HealthContributor): void {
    this.contributors.push(contributor);
  }

  all(): readonly HealthContributor[] {
    return this.contributors;
  }
}
