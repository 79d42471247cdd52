import { NODE_DEFS } from './nodes/node-registry';
import type { SimPrompt } from './comfyui-sim.types';

/**
 * comfy_execution/graph.py ExecutionList: nodes reachable from the outputs (cached inputs are not expanded),
 * run in dependency order; among ready nodes, those feeding an output within two hops go first.
 */
export class SimExecutionList {
  private readonly pending = new Map<string, number>();
  private readonly blocking = new Map<string, Set<string>>();
  /** Every node added, in the order ComfyUI's stack-based add_node visits them. */
  readonly visitOrder: string[] = [];

  constructor(
    private readonly prompt: SimPrompt,
    private readonly isCached: (nodeId: string) => boolean,
  ) {}

  addNode(nodeId: string): void {
    const stack = [nodeId];
    const links: [from: string, to: string][] = [];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (this.pending.has(id)) continue;
      this.pending.set(id, 0);
      this.blocking.set(id, new Set());
      this.visitOrder.push(id);
      for (const value of Object.values(this.prompt[id].inputs)) {
        if (!Array.isArray(value) || value.length !== 2) continue;
        const from = String(value[0]);
        if (!this.isCached(from)) stack.push(from);
        links.push([from, id]);
      }
    }
    for (const [from, to] of links) {
      if (this.isCached(from)) continue;
      const blocked = this.blocking.get(from)!;
      if (!blocked.has(to)) {
        blocked.add(to);
        this.pending.set(to, (this.pending.get(to) ?? 0) + 1);
      }
    }
  }

  isEmpty(): boolean {
    return this.pending.size === 0;
  }

  /** The next node to run, or null when what is left waits on itself (a dependency cycle). */
  stage(): string | null {
    const ready = [...this.pending].filter(([, count]) => count === 0).map(([id]) => id);
    if (ready.length === 0) return null;
    const isOutput = (id: string): boolean => NODE_DEFS.get(this.prompt[id].class_type)?.outputNode === true;
    const blocked = (id: string): Set<string> => this.blocking.get(id) ?? new Set();
    return (
      ready.find(isOutput) ??
      ready.find((id) => [...blocked(id)].some(isOutput)) ??
      ready.find((id) => [...blocked(id)].some((b) => [...blocked(b)].some(isOutput))) ??
      ready[0]
    );
  }

  complete(nodeId: string): void {
    this.pending.delete(nodeId);
    for (const to of this.blocking.get(nodeId) ?? []) this.pending.set(to, (this.pending.get(to) ?? 1) - 1);
    this.blocking.delete(nodeId);
  }
}
