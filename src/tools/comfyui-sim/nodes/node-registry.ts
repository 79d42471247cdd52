import type { JsonObject } from '../comfyui-sim.types';
import { imageNodes } from './image.nodes';
import { modelNodes } from './model.nodes';
import { samplingNodes } from './sampling.nodes';
import { saveImageNodes } from './save-image.nodes';
import type { NodeEnv, SimNodeDef } from './sim-node.types';

/** NODE_CLASS_MAPPINGS of the simulator. */
export const NODE_DEFS: ReadonlyMap<string, SimNodeDef> = new Map(
  [...imageNodes, ...saveImageNodes, ...modelNodes, ...samplingNodes].map((def) => [def.name, def]),
);

/** One entry of GET /object_info, shaped like server.py's node_info(). */
export function nodeInfo(def: SimNodeDef, env: NodeEnv): JsonObject {
  const types = def.inputTypes(env);
  const input: JsonObject = { required: types.required };
  const order: JsonObject = { required: Object.keys(types.required) };
  if (types.optional) {
    input.optional = types.optional;
    order.optional = Object.keys(types.optional);
  }
  if (types.hidden) {
    input.hidden = types.hidden;
    order.hidden = Object.keys(types.hidden);
  }
  const info: JsonObject = {
    input,
    input_order: order,
    output: def.returnTypes,
    output_is_list: def.returnTypes.map(() => false),
    output_name: def.returnNames ?? def.returnTypes,
    name: def.name,
    display_name: def.displayName,
    description: def.description,
    python_module: def.pythonModule,
    category: def.category,
    output_node: def.outputNode,
  };
  if (def.outputTooltips) info.output_tooltips = def.outputTooltips;
  return info;
}
