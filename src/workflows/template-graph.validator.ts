import { isLinkShaped, isValidLink } from './bind-path.util';
import { describeValue } from './input-rules.util';
import { checkKnownKeys, childPath, isPlainObject, type Report } from './template-problem.util';
import type { ApiNode, JsonValue, WorkflowTemplate } from './workflow.types';

const OUTPUT_KEYS = ['node'];
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

/** Checks the API-format graph: node shape and links. Returns what the output and bind checks need. */
export function checkPrompt(raw: unknown, report: Report): TemplateGraph {
  const ids = new Set<string>();
  const nodes = new Map<string, ApiNode>();
  if (!isPlainObject(raw)) {
    report(
      '$.prompt',
      `must be a ComfyUI API-format graph (node id → { class_type, inputs }), got ${describeValue(raw)}`,
    );
    return { usable: false, ids, nodes };
  }
  if (Array.isArray(raw.nodes) && Array.isArray(raw.links)) {
    report('$.prompt', 'looks like a UI workflow ("Save"); export it with "Save (API)" instead');
    return { usable: false, ids, nodes };
  }
  const entries = Object.entries(raw);
  if (entries.length === 0) {
    report('$.prompt', 'has no nodes');
    return { usable: false, ids, nodes };
  }
  for (const [id] of entries) ids.add(id);

  for (const [id, node] of entries) {
    const nodePath = childPath('$.prompt', id);
    if (!isPlainObject(node)) {
      report(nodePath, `must be a node object, got ${describeValue(node)}`);
      continue;
    }
    const classOk = typeof node.class_type === 'string' && node.class_type.trim() !== '';
    if (!classOk) report(`${nodePath}.class_type`, 'must be a non-empty string (the ComfyUI node class)');
    if (node._meta !== undefined && !isPlainObject(node._meta)) report(`${nodePath}._meta`, 'must be an object');
    if (!isPlainObject(node.inputs)) {
      report(`${nodePath}.inputs`, `must be an object, got ${describeValue(node.inputs)}`);
      continue;
    }
    for (const [inputName, value] of Object.entries(node.inputs as Record<string, JsonValue>)) {
      if (!isLinkShaped(value)) continue;
      const valuePath = childPath(`${nodePath}.inputs`, inputName);
      if (!isValidLink(value)) {
        report(valuePath, 'an array input is a link and must be ["<nodeId>", <outputIndex ≥ 0>]');
      } else if (!ids.has(value[0])) {
        report(valuePath, `links to node "${value[0]}", which does not exist`);
      }
    }
    if (classOk) nodes.set(id, node as unknown as ApiNode);
  }
  return { usable: true, ids, nodes };
}

/** Checks `output.node`, or that a SaveImage exists when it is absent. */
export function checkOutput(raw: unknown, graph: TemplateGraph, report: Report): void {
  if (raw === undefined) {
    const hasSaveImage = [...graph.nodes.values()].some((node) => node.class_type === 'SaveImage');
    if (graph.usable && !hasSaveImage) {
      report('$.output', 'is absent and the graph has no SaveImage node; add one or name the output node');
    }
    return;
  }
  if (!isPlainObject(raw)) {
    report('$.output', `must be an object { "node": "<nodeId>" }, got ${describeValue(raw)}`);
    return;
  }
  checkKnownKeys(raw, OUTPUT_KEYS, '$.output', report);
  const nodeId = raw.node;
  if (typeof nodeId !== 'string' || nodeId === '') {
    report('$.output.node', `must be a node id string, got ${describeValue(nodeId)}`);
    return;
  }
  if (!graph.usable) return;
  if (!graph.ids.has(nodeId)) {
    report('$.output.node', `node "${nodeId}" does not exist in prompt`);
    return;
  }
  const node = graph.nodes.get(nodeId);
  if (node && !isImageOutputNode(node)) {
    report(
      '$.output.node',
      `node "${nodeId}" (${node.class_type}) is not an image output node ` +
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
