import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store';
import { RedisMemoryMonitor } from '../../streams/redis-memory.monitor';
import { errorMessage } from '../../streams/stream-errors';
import { withTimeout } from '../../common/with-timeout.util';

const PROBE_TIMEOUT_MS = 2_000;

/**
 * Where the data lives and how full it is: Redis memory against maxmemory (down above
 * REDIS_MEMORY_HIGH_WATERMARK, when submits are refused) and the image store (backend reachable, bytes held).
 */
@Injectable()
export class StorageHealthIndicator {
  constructor(
    private readonly memory: RedisMemoryMonitor,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly health: HealthIndicatorService,
  ) {}

  async redisMemory(key = 'redisMemory'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const m = await withTimeout(this.memory.read(), PROBE_TIMEOUT_MS);
      const details = {
        usedBytes: m.usedBytes,
        maxBytes: m.maxBytes,
        ratio: m.ratio === null ? null : Math.round(m.ratio * 1000) / 1000,
        watermark: m.watermark,
        policy: m.policy,
        ...(m.maxBytes === 0 ? { warning: 'no maxmemory set: Redis grows until the host runs out' } : {}),
      };
      return m.aboveWatermark
        ? session.down({ ...details, message: 'above REDIS_MEMORY_HIGH_WATERMARK: new jobs are refused (503)' })
        : session.up(details);
    } catch (err) {
      return session.down({ message: errorMessage(err) });
    }
  }

  async blobStore(key = 'blobStore'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    try {
      const [usage] = await withTimeout(Promise.all([this.blobs.usage(), this.blobs.probe()]), PROBE_TIMEOUT_MS);
      return session.up({ ...usage });
    } catch (err) {
      return session.down({ backend: this.blobs.backend, message: errorMessage(err) });
    }
  }
}
