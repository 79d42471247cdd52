import type { WorkflowRequirements } from '../../workflows';
import { describeMissing, missingOn, type MissingCapability } from './capability-match';
import type { InstanceCapabilityAdvert } from './pool-capability.store';

/** Whether the fleet can run a job, judged from the instances' published capabilities. */
export interface FleetVerdict {
  /** Instances whose capabilities are known (the ones checked). */
  readonly checked: readonly string[];
  /** Checked instances that can run the job, whatever their state. */
  readonly capable: readonly string[];
  /** Capable instances that are up now (the job does not wait for a quarantined one). */
  readonly capableUp: readonly string[];
  /** Instances seen but not read yet: they might be able to. */
  readonly unknown: readonly string[];
  readonly missing: readonly { readonly instanceId: string; readonly missing: readonly MissingCapability[] }[];
}

export function judgeFleet(
  requirements: WorkflowRequirements,
  adverts: readonly InstanceCapabilityAdvert[],
): FleetVerdict {
  const checked: string[] = [];
  const capable: string[] = [];
  const capableUp: string[] = [];
  const unknown: string[] = [];
  const missing: { instanceId: string; missing: MissingCapability[] }[] = [];
  for (const advert of [...adverts].sort((a, b) => a.instanceId.localeCompare(b.instanceId))) {
    if (!advert.capabilities) {
      unknown.push(advert.instanceId);
      continue;
    }
    checked.push(advert.instanceId);
    const lacks = missingOn(requirements, advert.capabilities);
    if (lacks.length > 0) {
      missing.push({ instanceId: advert.instanceId, missing: lacks });
      continue;
    }
    capable.push(advert.instanceId);
    if (advert.state === 'up') capableUp.push(advert.instanceId);
  }
  return { checked, capable, capableUp, unknown, missing };
}

/** No instance can run it: some were checked, none is capable, and none is still unread. */
export function refusedByFleet(verdict: FleetVerdict): boolean {
  return verdict.checked.length > 0 && verdict.capable.length === 0 && verdict.unknown.length === 0;
}

/** One missing piece (`model "x.safetensors" (CheckpointLoaderSimple.ckpt_name, node 4)`) and the instances lacking it. */
export interface RefusalReason {
  readonly what: string;
  readonly instances: readonly string[];
}

/** The missing pieces, each named once with the instances that lack it, in the order first found. */
export function describeRefusal(verdict: FleetVerdict): RefusalReason[] {
  const byPiece = new Map<string, string[]>();
  for (const { instanceId, missing } of verdict.missing) {
    for (const piece of missing) {
      const text = describeMissing(piece);
      byPiece.set(text, [...(byPiece.get(text) ?? []), instanceId]);
    }
  }
  return [...byPiece.entries()].map(([what, instances]) => ({ what, instances }));
}
