import { summarizeCapabilities, type InstanceCapabilities } from '../../capabilities';
import { ComfyUiClient } from '../comfyui/comfyui.client';

export type InstanceState = 'up' | 'quarantined' | 'unknown';

const BASE_QUARANTINE_MS = 2_000;
const MAX_QUARANTINE_MS = 60_000;

/**
 * One ComfyUI server as this process sees it: its client (one socket per process and instance, with a clientId
 * unique to the process) and its health. Failures quarantine it with a doubling backoff; a successful probe
 * after the backoff re-admits it.
 */
export class ComfyUiInstance {
  state: InstanceState = 'unknown';
  quarantinedUntil = 0;
  lastError?: string;
  lastProbeAt = 0;
  version?: string;
  /** What it can run, from its /object_info; undefined until first read (then it is not judged). */
  capabilities?: InstanceCapabilities;
  /** The client's socket-open count at the last read: a reopened socket may mean a restarted server. */
  capabilitiesSocketOpens = -1;
  capabilitiesError?: string;
  /** Jobs this process placed here, and how many of them needed another model than the one before. */
  placed = 0;
  modelSwitches = 0;
  private failures = 0;

  constructor(
    readonly id: string,
    readonly url: string,
    readonly client: ComfyUiClient,
  ) {}

  get usable(): boolean {
    return this.state === 'up';
  }

  markUp(version?: string): void {
    this.state = 'up';
    this.failures = 0;
    this.lastError = undefined;
    if (version) this.version = version;
  }

  quarantine(reason: string, now = Date.now()): void {
    this.failures++;
    this.state = 'quarantined';
    this.lastError = reason;
    this.quarantinedUntil = now + Math.min(MAX_QUARANTINE_MS, BASE_QUARANTINE_MS * 2 ** (this.failures - 1));
  }

  dueForProbe(now = Date.now()): boolean {
    return this.state !== 'quarantined' || now >= this.quarantinedUntil;
  }

  describe(): Record<string, unknown> {
    return {
      url: this.url,
      state: this.state,
      ...(this.version ? { version: this.version } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.state === 'quarantined' ? { retryInMs: Math.max(0, this.quarantinedUntil - Date.now()) } : {}),
      capabilities: this.capabilities ? summarizeCapabilities(this.capabilities) : null,
      ...(this.capabilitiesError ? { capabilitiesError: this.capabilitiesError } : {}),
      placements: { placed: this.placed, modelSwitches: this.modelSwitches },
    };
  }
}

/** A stable, key-safe id for an instance URL (host:port[/path]). */
export function instanceIdOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}_${parsed.port || (parsed.protocol === 'https:' ? '443' : '80')}${parsed.pathname.replace(/[^A-Za-z0-9]+/g, '_').replace(/_+$/, '')}`;
}
