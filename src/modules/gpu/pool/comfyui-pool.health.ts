import type { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { withTimeout } from '../../../common/with-timeout.util';
import type { InstancePool } from './instance-pool';

/** Up while at least one ComfyUI instance is usable; details per instance (state, version, last error). */
export class ComfyUiPoolHealthIndicator {
  constructor(
    private readonly pool: InstancePool,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(): Promise<HealthIndicatorResult> {
    const session = this.health.check('comfyui');
    const instances = await Promise.all(
      this.pool.all().map(async (i) => ({
        ...i.describe(),
        // Leases live in Redis: when Redis is down the pool is still described, without slot counts.
        slotsInUse: await withTimeout(this.pool.slotsInUse(i), 500).catch(() => null),
      })),
    );
    const usable = this.pool.all().filter((i) => i.usable).length;
    const details = { usable, total: instances.length, pipelineDepth: this.pool.depth, instances };
    return usable > 0 ? session.up(details) : session.down({ ...details, message: 'no usable ComfyUI instance' });
  }
}
