import { isLinkShaped, isValidLink } from './bind-path.util';
import { childPath, isPlainObject, type Report } from './template-problem.util';
import type { ApiNode, WorkflowTemplate } from './workflow.types';

const IMAGE_OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage']);

export interface TemplateGraph {
  /** False when the prompt itself is unusable: node references are then not checked (they would all fail). */
  readonly usable: boolean;
  /** Every node id present, well-formed or not (links and `output.node` may name any of them). */
  readonly ids: ReadonlySet<string>;
  /** Nodes with a class_type and an inputs object: the ones binds and output checks can inspect. */
  readonly nodes: ReadonlyMap<string, ApiNode>;
}

/** Node ids of the outputs: `output.node`, or every SaveImage in the graph's key order. */
export function resolveOutputNodeIds(template: Pick<WorkflowTemplate, 'output' | 'prompt'>): string[] {
  if (template.output) return [template.output.node];
  return Object.entries(template.prompt)
    .filter(([, node]) => node.class_type === 'SaveImage')
    .map(([id]) => id);
}

/**
 * What the reference checks need of the API-format graph (its shape is the file schema's to check): every node id,
 * and the nodes the schema found well-formed. Unusable (nothing is checked against it) when the prompt itself is.
 */
export function readGraph(raw: unknown, usable: boolean, wellFormed: (id: string) => boolean): TemplateGraph {
  const ids = new Set<string>();
  const nodes = new Map<string, ApiNode>();
  if (!usable || !isPlainObject(raw)) return { usable: false, ids, nodes };
  for (const [id, node] of Object.entries(raw)) {
    ids.add(id);
    if (wellFormed(id)) nodes.set(id, node as ApiNode);
  }
  return { usable: true, ids, nodes };
}

/** Every array among a node's inputs is a link (ComfyUI's rule) and must name a node of the graph. */
export function checkLinks(graph: TemplateGraph, report: Report): void {
  for (const [id, node] of graph.nodes) {
    for (const [inputName, value] of Object.entries(node.inputs)) {
      if (!isLinkShaped(value)) continue;
      const valuePath = childPath(`${childPath('$.prompt', id)}.inputs`, inputName);
      if (!isValidLink(value)) {
        report(valuePath, 'an array input is a link and must be ["<nodeId>", <outputIndex ≥ 0>]');
      } else if (!graph.ids.has(value[0])) {
        report(valuePath, `links to node "${value[0]}", which does not exist`);
      }
    }
  }
}

/** Checks that `output.node` names an image output of the graph, or that a SaveImage exists when it is absent. */
export function checkOutput(output: { node: string } | undefined, graph: TemplateGraph, report: Report): void {
  if (!graph.usable) return;
  if (output === undefined) {
    const hasSaveImage = [...graph.nodes.values()].some((node) => node.class_type === 'SaveImage');
    if (!hasSaveImage)
      report('$.output', 'is absent and the graph has no SaveImage node; add one or name the output node');
    return;
  }
  const node = graph.nodes.get(output.node);
  if (!node) {
    report('$.output.node', `node "${output.node}" does not exist in prompt`);
  } else if (!isImageOutputNode(node)) {
    report(
      '$.output.node',
      `node "${output.node}" (${node.class_type}) is not an image output node ` +
        '(SaveImage, PreviewImage, or a node with an "images" link input)',
    );
  }
}

// Custom save nodes ("Image Save", websocket savers) follow SaveImage's convention of an `images` link input.
function isImageOutputNode(node: ApiNode): boolean {
  if (IMAGE_OUTPUT_CLASSES.has(node.class_type)) return true;
  const images = node.inputs.images;
  return isLinkShaped(images) && isValidLink(images);
}
