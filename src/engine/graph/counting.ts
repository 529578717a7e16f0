import type { LayerRow, ModelFormSummary } from '../reports';
import { macsPartsOf } from './layerRules';
import { GraphNode, ModelGraph } from './modelGraph';

const last = (shape: number[]) => shape[shape.length - 1];
const product = (values: number[]) => values.reduce((a, b) => a * b, 1);
const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

/**
 * Multiply-accumulates of one forward pass of one image through a node, as its layer rule counts
 * them: convs (all kinds) and dense layers only, as the RepVGG and PaS papers count; BN,
 * activations, adds and pooling are not counted.
 */
export function nodeMacs(node: GraphNode): number {
  return macsPartsOf(node).reduce((sum, part) => sum + part.macs, 0);
}

/**
 * Parameters of a node. BatchNormalization counts gamma and beta only: its moving statistics are
 * buffers, not parameters (PyTorch's and the papers' convention).
 */
export function nodeParams(node: GraphNode, graph: ModelGraph): number {
  // Shared layers (a DBC mask applied at several places) own their weights once: count at the first call.
  if (node.id !== node.layerName) return 0;
  const record = graph.weights.get(node.layerName);
  if (!record) return 0;
  let total = 0;
  for (const [name, weight] of Object.entries(record)) {
    if (name === 'moving_mean' || name === 'moving_variance') continue;
    total += product(weight.shape);
  }
  return total;
}

function kernelSizeOf(node: GraphNode): number {
  return node.config.kernel_size === undefined ? 0 : pair(node.config.kernel_size, 1)[0];
}

/** The per-layer table (every layer with MACs or parameters) and totals of one form of a model. */
export function summarizeGraph(graph: ModelGraph): ModelFormSummary {
  const layers: LayerRow[] = [];
  let totalMacs = 0;
  let totalParams = 0;
  for (const node of graph.nodes) {
    const macs = nodeMacs(node);
    const params = nodeParams(node, graph);
    totalMacs += macs;
    totalParams += params;
    if (macs === 0 && params === 0) continue;
    layers.push({
      name: node.id,
      type: node.className,
      inChannels: node.inputShapes[0] ? last(node.inputShapes[0]) : 0,
      outChannels: last(node.outputShape),
      kernelSize: kernelSizeOf(node),
      stride: pair(node.config.strides, 1)[0],
      outHeight: node.outputShape.length === 3 ? node.outputShape[0] : 1,
      outWidth: node.outputShape.length === 3 ? node.outputShape[1] : 1,
      macs,
      params,
    });
  }
  return { layers, totalMacs, totalParams };
}
