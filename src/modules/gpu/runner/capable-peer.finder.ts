import { Injectable } from '@nestjs/common';
import type { JobInputValue } from '../../../streams/job-event.types';
import { requirementsOf, type WorkflowTemplate } from '../../../workflows';
import { canRun, PoolCapabilityStore } from '../../capabilities';
import { GpuWorkerAdvertStore } from './gpu-worker-advert.store';

/**
 * Which other gpu process can run a job this one cannot: a live peer with an instance whose advertised node
 * classes and model files cover the job. Peers with such an instance up come first, then those with free slots;
 * among equals one at random, so hand-offs spread.
 */
@Injectable()
export class CapablePeerFinder {
  constructor(
    private readonly workers: GpuWorkerAdvertStore,
    private readonly capabilities: PoolCapabilityStore,
  ) {}

  /** The peer's `gpu` consumer, or null when no live peer can run the job. */
  async find(template: WorkflowTemplate, inputs: Record<string, JobInputValue>, self: string): Promise<string | null> {
    const requirements = requirementsOf(template, inputs);
    const [workers, instances] = await Promise.all([this.workers.live(), this.capabilities.live()]);
    const byId = new Map(instances.map((a) => [a.instanceId, a]));
    const peers = workers.flatMap((worker) => {
      if (!worker.consumer || worker.consumer === self) return [];
      const capable = (worker.pool ?? worker.instances)
        .map((id) => byId.get(id))
        .filter((a) => a?.capabilities && canRun(requirements, a.capabilities));
      if (capable.length === 0) return [];
      const rank = (capable.some((a) => a!.state === 'up') ? 2 : 0) + (worker.slots > 0 ? 1 : 0);
      return [{ consumer: worker.consumer, rank }];
    });
    if (peers.length === 0) return null;
    const best = Math.max(...peers.map((p) => p.rank));
    const top = peers.filter((p) => p.rank === best);
    return top[Math.floor(Math.random() * top.length)].consumer;
  }
}
