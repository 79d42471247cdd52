import { Injectable } from '@nestjs/common';
import type { JobInputValue } from '../../../streams/job-event.types';
import { requirementsOf, type WorkflowTemplate } from '../../../workflows';
import { canRun, PoolCapabilityStore } from '../../capabilities';
import { GpuWorkerAdvertStore, type GpuWorkerAdvert } from '../../generation';

interface Candidate {
  readonly consumer: string;
  /** Drives the instance an earlier attempt placed the prompt on: it re-attaches instead of running it again. */
  readonly holdsPlacement: boolean;
  readonly capableUp: boolean;
  /** Share of the hand-offs it gets among equals: its slots over what it already holds. */
  readonly weight: number;
}

/**
 * Which other gpu process can run a job this one cannot: a live peer with an instance whose advertised node
 * classes and model files cover the job. The peer that drives the instance an earlier attempt placed the prompt on
 * comes first (it collects or re-attaches; another would run the prompt twice), then peers with such an instance
 * up; among those, one at random weighted by free capacity (slots ÷ (1 + jobs held), from adverts a few seconds
 * old), so a burst of hand-offs spreads rather than piling on one peer.
 */
@Injectable()
export class CapablePeerFinder {
  constructor(
    private readonly workers: GpuWorkerAdvertStore,
    private readonly capabilities: PoolCapabilityStore,
  ) {}

  /** The peer's `gpu` consumer, or null when no live peer can run the job. */
  async find(
    template: WorkflowTemplate,
    inputs: Record<string, JobInputValue>,
    self: string,
    placedOn?: string,
    random: () => number = Math.random,
  ): Promise<string | null> {
    const requirements = requirementsOf(template, inputs);
    const [workers, instances] = await Promise.all([this.workers.live(), this.capabilities.live()]);
    const byId = new Map(instances.map((a) => [a.instanceId, a]));
    const candidates = workers.flatMap((worker): Candidate[] => {
      if (!worker.consumer || worker.consumer === self) return [];
      const pool = worker.pool ?? worker.instances;
      const capable = pool
        .map((id) => byId.get(id))
        .filter((a) => a?.capabilities && canRun(requirements, a.capabilities));
      if (capable.length === 0) return [];
      return [
        {
          consumer: worker.consumer,
          holdsPlacement: placedOn !== undefined && pool.includes(placedOn),
          capableUp: capable.some((a) => a!.state === 'up'),
          weight: weightOf(worker),
        },
      ];
    });
    const tiers = [candidates.filter((c) => c.holdsPlacement), candidates.filter((c) => c.capableUp), candidates];
    const tier = tiers.find((t) => t.length > 0);
    // In a fixed order, so a draw picks the same peer from the same adverts however Redis lists them.
    return tier
      ? pickWeighted(
          [...tier].sort((a, b) => a.consumer.localeCompare(b.consumer)),
          random,
        ).consumer
      : null;
  }
}

function weightOf(worker: GpuWorkerAdvert): number {
  return Math.max(worker.slots, 1) / (1 + Math.max(worker.held ?? 0, 0));
}

function pickWeighted(candidates: readonly Candidate[], random: () => number): Candidate {
  const total = candidates.reduce((sum, c) => sum + c.weight, 0);
  let point = random() * total;
  for (const candidate of candidates) {
    point -= candidate.weight;
    if (point < 0) return candidate;
  }
  return candidates[candidates.length - 1];
}
