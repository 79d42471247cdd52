import type { RedisClient } from '../../../redis/redis-client';
import { silentLogger, type Logger } from '../../../common/logger';
import { sleep } from '../../../common/sleep.util';
import { errorMessage } from '../../../streams/stream-errors';
import type { WorkflowRequirements } from '../../../workflows';
import { capabilitiesFromObjectInfo, canRun, describeMissing, missingOn } from '../../capabilities';
import { ComfyUiClient } from '../comfyui/comfyui.client';
import { ComfyUiInstance, instanceIdOf } from './comfyui-instance';
import { InstanceLeaseStore, type InstanceLease } from './instance-lease.store';

export interface InstancePoolOptions {
  urls: readonly string[];
  redis: RedisClient;
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
  /** How often an up instance's /object_info is read again (besides on admission and after a restart). */
  capabilityRefreshMs?: number;
  /**
   * Model affinity: the hash (instance id → model set last given) that lets placement keep an instance on its
   * model. Unset: today's least-loaded placement.
   */
  modelTailsKey?: string;
}

/** The job's needs, for routing (capabilities) and model affinity. */
export interface PlacementNeeds {
  requirements: WorkflowRequirements;
  jobId?: string;
}

/** No instance of this pool can run the job, and none of them is still unread: waiting would not help. */
export class NoCapableInstanceError extends Error {
  override readonly name = 'NoCapableInstanceError';
}

export interface PlacedLease {
  instance: ComfyUiInstance;
  release(): Promise<void>;
}

const WAIT_MIN_MS = 20;
const WAIT_MAX_MS = 500;
const PROBE_TIMEOUT_MS = 3_000;
const OBJECT_INFO_TIMEOUT_MS = 15_000;

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
  /** Waiters for a slot in this process, woken at once when one of its leases is released. */
  private readonly wakers = new Set<() => void>();
  private readonly changeListeners = new Set<() => void>();
  /** Jobs of this process waiting for a slot, by model set: an idle instance is left to one that wants its model. */
  private readonly waiting = new Map<symbol, string>();
  /** Placements so far: a waiter stops deferring to others once this many have overtaken it (no starvation). */
  private placements = 0;

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
   * Waits (abortably, with a capped backoff, woken early by this process's releases) for a slot on a usable
   * instance that can run the job. With `prefer`, takes a slot on that instance even past the depth (re-attaching
   * to a prompt already there must not wait behind new work). A job only quarantined or busy instances can run
   * waits for them; one that no instance can run (all read) fails with NoCapableInstanceError.
   */
  async acquire(signal: AbortSignal, prefer?: ComfyUiInstance, needs?: PlacementNeeds): Promise<PlacedLease> {
    if (prefer) {
      const placed = await this.leases.acquire([prefer.id], true);
      if (placed) return this.hold(prefer, placed.lease);
    }
    let wait = WAIT_MIN_MS;
    const me = Symbol('waiter');
    const since = this.placements;
    this.waiting.set(me, needs?.requirements.modelKey ?? '');
    try {
      for (;;) {
        signal.throwIfAborted();
        const candidates = this.candidatesFor(needs);
        const usable = this.rotated(candidates.filter((i) => i.usable));
        const patient = this.placements - since < this.instances.length * this.depth * 2;
        const placed = usable.length > 0 ? await this.take(usable, needs, patient ? this.wantedBesides(me) : []) : null;
        if (placed) return placed;
        const woken = await this.sleepOrWake(wait, signal);
        wait = woken ? WAIT_MIN_MS : Math.min(WAIT_MAX_MS, wait * 2);
      }
    } finally {
      this.waiting.delete(me);
    }
  }

  private wantedBesides(me: symbol): string[] {
    const wanted = new Set<string>();
    for (const [waiter, key] of this.waiting) if (waiter !== me && key !== '') wanted.add(key);
    return [...wanted];
  }

  /** Instances that can run the job or are not read yet; throws when there is none and waiting cannot help. */
  private candidatesFor(needs?: PlacementNeeds): ComfyUiInstance[] {
    if (!needs) return [...this.instances];
    const candidates = this.instances.filter((i) => !i.capabilities || canRun(needs.requirements, i.capabilities));
    if (candidates.length > 0) return candidates;
    throw new NoCapableInstanceError(
      `No ComfyUI instance of this worker can run the job: ${this.lacks(needs.requirements)}.`,
    );
  }

  /**
   * What keeps every instance of this pool from running the job (`<id> lacks …; …`), or null when one can or
   * has not been read yet (then the job waits here rather than going elsewhere).
   */
  cannotRun(requirements: PlacementNeeds['requirements']): string | null {
    if (this.instances.some((i) => !i.capabilities || canRun(requirements, i.capabilities))) return null;
    return this.lacks(requirements);
  }

  private lacks(requirements: PlacementNeeds['requirements']): string {
    return this.instances
      .map((i) => `${i.id} lacks ${missingOn(requirements, i.capabilities!).map(describeMissing).join(', ')}`)
      .join('; ');
  }

  private async take(
    usable: ComfyUiInstance[],
    needs: PlacementNeeds | undefined,
    wantedByOthers: readonly string[],
  ): Promise<PlacedLease | null> {
    const modelKey = needs?.requirements.modelKey ?? '';
    const ids = usable.map((i) => i.id);
    if (!this.options.modelTailsKey || modelKey === '') {
      const placed = await this.leases.acquire(ids);
      if (!placed) return null;
      const instance = this.byId(placed.instanceId)!;
      instance.placed++;
      this.placements++;
      return this.hold(instance, placed.lease);
    }
    const placed = await this.leases.acquireWithAffinity(ids, modelKey, this.options.modelTailsKey, wantedByOthers);
    if (!placed) return null;
    const instance = this.byId(placed.instanceId)!;
    instance.placed++;
    this.placements++;
    if (placed.previousModel !== null && placed.previousModel !== modelKey) {
      instance.modelSwitches++;
      this.log.debug(
        { jobId: needs?.jobId, instance: instance.url, from: placed.previousModel, to: modelKey },
        'placed on an instance with another model',
      );
    }
    return this.hold(instance, placed.lease);
  }

  /** Resolves true when woken by a release in this process, false after `ms`. */
  private sleepOrWake(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        signal.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const wake = (): void => done(true);
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.wakers.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Called when an instance's capabilities or state changed (they are published for the API). */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  /** A call to the instance failed in a way that says the instance is unwell: stop placing work there. */
  reportFailure(instance: ComfyUiInstance, reason: string): void {
    if (instance.state === 'quarantined') return;
    instance.quarantine(reason);
    this.options.onHealth?.(instance.id, false);
    this.changed();
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
        for (const wake of [...this.wakers]) wake();
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
      if (!wasUsable || this.capabilitiesStale(instance)) await this.readCapabilities(instance);
      if (!wasUsable) this.changed();
    } catch (err) {
      if (wasUsable || instance.state === 'unknown') {
        this.log.warn({ instance: instance.url, err: errorMessage(err) }, 'ComfyUI instance probe failed');
      }
      instance.quarantine(errorMessage(err));
      this.options.onHealth?.(instance.id, false);
      if (wasUsable) this.changed();
    }
  }

  /** Never read, read long ago, or the socket reopened since (the server may have restarted with other models). */
  private capabilitiesStale(instance: ComfyUiInstance): boolean {
    const caps = instance.capabilities;
    // The socket's first open (right after start-up's read) is not a restart; any later one may be.
    if (!caps || instance.client.socketOpens > Math.max(1, instance.capabilitiesSocketOpens)) return true;
    return Date.now() - caps.readAt >= (this.options.capabilityRefreshMs ?? 60_000);
  }

  /**
   * Reads /object_info; parses and announces it only when its hash changed. A failed read keeps what was known
   * (the instance is judged by /system_stats, not by this), and is retried at the next probe.
   */
  async readCapabilities(instance: ComfyUiInstance): Promise<void> {
    const opens = instance.client.socketOpens;
    try {
      const { text, hash } = await instance.client.objectInfo(AbortSignal.timeout(OBJECT_INFO_TIMEOUT_MS));
      const now = Date.now();
      const unchanged = instance.capabilities?.hash === hash;
      instance.capabilities = unchanged
        ? { ...instance.capabilities!, readAt: now }
        : capabilitiesFromObjectInfo(JSON.parse(text), hash, now);
      instance.capabilitiesSocketOpens = opens;
      instance.capabilitiesError = undefined;
      if (unchanged) return;
      this.log.info(
        { instance: instance.url, nodeClasses: instance.capabilities.nodeClasses.length, hash: hash.slice(0, 12) },
        'ComfyUI instance capabilities read',
      );
      this.changed();
    } catch (err) {
      instance.capabilitiesError = errorMessage(err);
      this.log.warn({ instance: instance.url, err: errorMessage(err) }, 'cannot read /object_info');
    }
  }
}
