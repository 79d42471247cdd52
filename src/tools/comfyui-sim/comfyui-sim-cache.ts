import { createHash, randomUUID } from 'node:crypto';
import { NODE_DEFS } from './nodes/node-registry';
import type { NodeEnv } from './nodes/sim-node.types';
import type { JsonObject, SimPrompt } from './comfyui-sim.types';

export interface CachedUi {
  output: JsonObject;
  meta: JsonObject;
}

/**
 * ComfyUI's default ("classic") cache: node outputs keyed by an input signature (class, IS_CHANGED, literal inputs,
 * upstream signatures — not the node id). Starting a prompt drops every entry the new prompt does not use, so
 * only outputs shared with the previous prompt survive.
 */
export class SimOutputCache {
  private readonly outputs = new Map<string, unknown[]>();
  private readonly ui = new Map<string, CachedUi>();
  private signatures = new Map<string, string>();

  setPrompt(prompt: SimPrompt, env: NodeEnv): void {
    const signatures = new Map<string, string>();
    const visiting = new Set<string>();
    const sign = (id: string): string => {
      const known = signatures.get(id);
      if (known) return known;
      const node = prompt[id] as SimPrompt[string] | undefined;
      if (!node || visiting.has(id)) return `uncacheable:${randomUUID()}`;
      visiting.add(id);
      const def = NODE_DEFS.get(node.class_type);
      const inputs = Object.keys(node.inputs)
        .sort()
        .map((key) => {
          const value = node.inputs[key];
          if (!Array.isArray(value) || value.length !== 2) return [key, value];
          const [from, index] = value as [unknown, unknown];
          return [key, 'link', sign(String(from)), index];
        });
      const changed = def?.isChanged?.(node.inputs, env) ?? '';
      const signature = createHash('sha1')
        .update(JSON.stringify([node.class_type, changed, inputs]))
        .digest('hex');
      visiting.delete(id);
      signatures.set(id, signature);
      return signature;
    };
    for (const id of Object.keys(prompt)) sign(id);
    this.signatures = signatures;
    const used = new Set(signatures.values());
    for (const key of [...this.outputs.keys()]) if (!used.has(key)) this.outputs.delete(key);
    for (const key of [...this.ui.keys()]) if (!used.has(key)) this.ui.delete(key);
  }

  get(nodeId: string): unknown[] | undefined {
    const key = this.signatures.get(nodeId);
    return key === undefined ? undefined : this.outputs.get(key);
  }

  set(nodeId: string, outputs: unknown[]): void {
    const key = this.signatures.get(nodeId);
    if (key !== undefined) this.outputs.set(key, outputs);
  }

  getUi(nodeId: string): CachedUi | undefined {
    const key = this.signatures.get(nodeId);
    return key === undefined ? undefined : this.ui.get(key);
  }

  setUi(nodeId: string, ui: CachedUi): void {
    const key = this.signatures.get(nodeId);
    if (key !== undefined) this.ui.set(key, ui);
  }
}
