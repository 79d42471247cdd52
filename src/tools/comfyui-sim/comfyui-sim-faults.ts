import type { SimFault } from './comfyui-sim.types';

type FaultOf<K extends SimFault['kind']> = Extract<SimFault, { kind: K }>;

/** Injected faults waiting to fire; each one is consumed `times` times (default once). */
export class SimFaultBook {
  private readonly armed: { fault: SimFault; left: number }[] = [];

  add(fault: SimFault): void {
    this.armed.push({ fault, left: fault.times ?? 1 });
  }

  clear(): void {
    this.armed.length = 0;
  }

  /** Consumes and returns the first armed fault of `kind` that `matches`. */
  take<K extends SimFault['kind']>(kind: K, matches: (fault: FaultOf<K>) => boolean = () => true): FaultOf<K> | null {
    const index = this.armed.findIndex(({ fault }) => fault.kind === kind && matches(fault as FaultOf<K>));
    if (index < 0) return null;
    const entry = this.armed[index];
    entry.left--;
    if (entry.left <= 0) this.armed.splice(index, 1);
    return entry.fault as FaultOf<K>;
  }

  /** Whether a fault of `kind` matching is armed, without consuming it. */
  has<K extends SimFault['kind']>(kind: K, matches: (fault: FaultOf<K>) => boolean = () => true): boolean {
    return this.armed.some(({ fault }) => fault.kind === kind && matches(fault as FaultOf<K>));
  }
}
