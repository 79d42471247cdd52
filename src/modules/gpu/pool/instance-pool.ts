import type Redis from 'ioredis';
import { silentLogger, type Logger } from '../../../common/logger';
import { sleep } from '../../../common/sleep.util';
import { errorMessage } from '../../../streams/stream-errors';
import { ComfyUiClient } from '../comfyui/comfyui.client';
import { ComfyUiInstance, instanceIdOf } from './comfyui-instance';
import { InstanceLeaseStore, type InstanceLease } from './instance-lease.store';

export interface InstancePoolOptions {
  urls: readonly string[];
  redis: Redis;
  leaseKey: (instanceId: string) => string;
  /** Unique per process: ComfyUI routes execution messages by clientId. */
  clientIdBase: string;
  /** Prompts one instance holds at once across all replicas (running + queued next). */
  pipelineDepth?: number;
  leaseTtlMs?: number;
  probeIntervalMs?: number;
  logger?: Logger;
  /** Told after every probe and quarantine (metrics). */
  onHealth?: (instanceId: string, up: boolean) => void;
}

export interface PlacedLease {
  instance: ComfyUiInstance;
  release(): Promise<void>;
}

const WAIT_MIN_MS = 20;
const WAIT_MAX_MS = 500;
const PROBE_TIMEOUT_MS = 3_000;

/**
 * The ComfyUI instances from COMFYUI_URLS: probes them (`/system_stats`), quarantines failing ones with backoff,
 * re-admits them after a good probe, and hands out Redis-leased slots (pipeline depth 2 by default: the next
 * prompt is already queued on the instance when the current one finishes, so the GPU never idles between jobs).
 */
export class InstancePool {
  readonly depth: number;
  private readonly instances: ComfyUiInstance[];
  private readonly leases: InstanceLeaseStore;
  private readonly leaseTtlMs: number;
  private readonly log: Logger;
  private readonly stop = new AbortController();
  private probeLoop?: Promise<void>;
  private rotation = 0;

  constructor(private readonly options: InstancePoolOptions) {
    this.depth = options.pipelineDepth ?? 2;
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.log = options.logger ?? silentLogger;
    this.leases = new InstanceLeaseStore(options.redis, options.leaseKey, this.leaseTtlMs, this.depth);
    this.instances = options.urls.map((url, i) => {
      const client = new ComfyUiClient({ baseUrl: url, clientId: `${options.clientIdBase}-${i}`, logger: this.log });
      return new ComfyUiInstance(instanceIdOf(url), url, client);
    });
  }

  /** Probes every instance once (bounded), then keeps probing in the background. Never throws. */
  async start(): Promise<void> {
    await Promise.all(this.instances.map((i) => this.probe(i)));
    for (const instance of this.instances) instance.client.connect();
    this.probeLoop = this.runProbes();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.probeLoop;
    await Promise.allSettled(this.instances.map((i) => i.client.close()));
  }

  all(): readonly ComfyUiInstance[] {
    return this.instances;
  }

  byId(id: string): ComfyUiInstance | undefined {
    return this.instances.find((i) => i.id === id);
  }

  usableIds(): string[] {
    return this.instances.filter((i) => i.usable).map((i) => i.id);
  }

  /** Parallel jobs this pool can usefully hold in this process: usable instances × pipeline depth. */
  capacity(): number {
    return this.instances.filter((i) => i.usable).length * this.depth;
  }

  /**
   * Waits (abortably, with a capped backoff) for a slot on a usable instance. With `prefer`, takes a slot on that
   * instance even past the depth (re-attaching to a prompt already there must not wait behind new work).
   */
  async acquire(signal: AbortSignal, prefer?: ComfyUiInstance): Promise<PlacedLease> {
    if (prefer) {
      const placed = await this.leases.acquire([prefer.id], true);
      if (placed) return this.hold(prefer, placed.lease);
    }
    let wait = WAIT_MIN_MS;
    for (;;) {
      signal.throwIfAborted();
      const usable = this.rotated(this.instances.filter((i) => i.usable));
      const placed = usable.length > 0 ? await this.leases.acquire(usable.map((i) => i.id)) : null;
      if (placed) return this.hold(this.byId(placed.instanceId)!, placed.lease);
      await sleep(wait, signal);
      wait = Math.min(WAIT_MAX_MS, wait * 2);
    }
  }

  /** A call to the instance failed in a way that says the instance is unwell: stop placing work there. */
  reportFailure(instance: ComfyUiInstance, reason: string): void {
    if (instance.state === 'quarantined') return;
    instance.quarantine(reason);
    this.options.onHealth?.(instance.id, false);
    this.log.warn({ instance: instance.url, reason }, 'ComfyUI instance quarantined');
  }

  async slotsInUse(instance: ComfyUiInstance): Promise<number> {
    return this.leases.inUse(instance.id);
  }

  private hold(instance: ComfyUiInstance, lease: InstanceLease): PlacedLease {
    const timer = setInterval(() => void this.leases.renew(lease).catch(() => undefined), this.leaseTtlMs / 3);
    timer.unref();
    let released = false;
    return {
      instance,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.leases.release(lease).catch(() => undefined);
      },
    };
  }

  private rotated(list: ComfyUiInstance[]): ComfyUiInstance[] {
    if (list.length < 2) return list;
    const start = this.rotation++ % list.length;
    return [...list.slice(start), ...list.slice(0, start)];
  }

  private async runProbes(): Promise<void> {
    const interval = this.options.probeIntervalMs ?? 5_000;
    while (!this.stop.signal.aborted) {
      await sleep(Math.min(interval, 1_000), this.stop.signal);
      const now = Date.now();
      await Promise.all(
        this.instances
          .filter((i) => i.dueForProbe(now) && now - i.lastProbeAt >= (i.usable ? interval : 0))
          .map((i) => this.probe(i)),
      );
    }
  }

  private async probe(instance: ComfyUiInstance): Promise<void> {
    instance.lastProbeAt = Date.now();
    const wasUsable = instance.usable;
    try {
      const stats = await instance.client.systemStats(AbortSignal.timeout(PROBE_TIMEOUT_MS));
      instance.markUp(stats.comfyuiVersion);
      this.options.onHealth?.(instance.id, true);
      if (!wasUsable) this.log.info({ instance: instance.url, version: stats.comfyuiVersion }, 'ComfyUI instance up');
    } catch (err) {
      if (wasUsable || instance.state === 'unknown') {
        this.log.warn({ instance: instance.url, err: errorMessage(err) }, 'ComfyUI instance probe failed');
      }
      instance.quarantine(errorMessage(err));
      this.options.onHealth?.(instance.id, false);
    }
  }
}
