import { analyzeGraph, GraphAnalysis } from '../graph/analysis';
import { cloneGraph, GraphNode, ModelGraph, WeightArray } from '../graph/modelGraph';
import { conv2dConfig } from './reparameterize';
import { KEEP_THRESHOLD } from '../layers/dbc';

/** Kept channel indices (ascending) per prunable group id. Groups not listed keep every channel. */
export type KeptChannels = Map<string, number[]>;

/**
 * The binary masks a graph's DBC layers hold, as kept channel indices per group. A group whose
 * mask drops every channel keeps its strongest one: a layer of width zero is not a network.
 */
export function keptChannelsFromMasks(graph: ModelGraph, analysis: GraphAnalysis = analyzeGraph(graph)): KeptChannels {
  const kept: KeptChannels = new Map();
  for (const node of graph.nodes) {
    if (node.className !== 'DepthwiseBinaryConv') continue;
    const group = analysis.groupById.get(analysis.spaceOf.get(node.id)!)!;
    if (!group.prunable || kept.has(group.id)) continue;
    const latent = graph.weights.get(node.layerName)!.latent.values;
    const keep: number[] = [];
    latent.forEach((v, c) => v > KEEP_THRESHOLD && keep.push(c));
    if (keep.length === 0) {
      // The DBC layer's own rule (binaryMask): a layer keeps its strongest channels.
      const strongest = Math.max(...latent);
      latent.forEach((v, c) => v === strongest && keep.push(c));
    }
    kept.set(group.id, keep);
  }
  return kept;
}

/** Slices one axis of a weight to the given indices. */
export function sliceAxis(weight: WeightArray, axis: number, keep: number[]): WeightArray {
  const shape = weight.shape;
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = shape[axis];
  const values = new Float32Array(outer * keep.length * inner);
  let dst = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const src = (o * size + k) * inner;
      values.set(weight.values.subarray(src, src + inner), dst);
      dst += inner;
    }
  }
  const newShape = shape.slice();
  newShape[axis] = keep.length;
  return { shape: newShape, values };
}

const sameList = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Physically removes channels: the output channels of every layer in a pruned group and the
 * matching input channels of every consumer (next convs, BN, depthwise convs, masks, and the
 * classifier's input features through Flatten). The result computes exactly what the masked
 * graph computes. An identity branch of a multi-branch block whose input and output keep
 * different channels becomes a 1x1 selection conv (with its BN), which reparameterizes as before.
 */
export function pruneGraph(input: ModelGraph, kept: KeptChannels): ModelGraph {
  const analysis = analyzeGraph(input);
  const graph = cloneGraph(input);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const fullWidth = (groupId: string) => analysis.groupById.get(groupId)!.width;
  const keepOf = (nodeId: string): number[] | undefined => kept.get(analysis.spaceOf.get(nodeId)!);
  const widthOf = (nodeId: string): number => {
    const keep = keepOf(nodeId);
    const node = byId.get(nodeId)!;
    return keep ? keep.length : node.outputShape[node.outputShape.length - 1];
  };
  for (const [groupId, keep] of kept) {
    const group = analysis.groupById.get(groupId);
    if (!group || !group.prunable) throw new Error(`group '${groupId}' is not prunable`);
    if (keep.length === 0 || keep.some((c, i) => c < 0 || c >= group.width || (i > 0 && c <= keep[i - 1]))) {
      throw new Error(`group '${group.name}': kept channels must be ascending indices in [0, ${group.width})`);
    }
  }

  const prunedLayers = new Set<string>();
  const newNodes = new Map<string, GraphNode[]>();
  for (const node of graph.nodes) {
    const w = graph.weights.get(node.layerName);
    const inKeep = node.inputs.length > 0 ? keepOf(node.inputs[0]) : undefined;
    const outKeep = keepOf(node.id);
    const firstCall = !prunedLayers.has(node.layerName);
    prunedLayers.add(node.layerName);
    switch (node.className) {
      case 'Conv2D':
        if (w && firstCall) {
          if (inKeep) w.kernel = sliceAxis(w.kernel, 2, inKeep);
          if (outKeep) {
            w.kernel = sliceAxis(w.kernel, 3, outKeep);
            if (w.bias) w.bias = sliceAxis(w.bias, 0, outKeep);
          }
        }
        node.config.filters = widthOf(node.id);
        break;
      case 'DepthwiseConv2D':
        if (w && firstCall && inKeep) {
          w.depthwise_kernel = sliceAxis(w.depthwise_kernel, 2, inKeep);
          if (w.bias) w.bias = sliceAxis(w.bias, 0, inKeep);
        }
        break;
      case 'Dense':
        if (w && firstCall) {
          if (inKeep) {
            const groupWidth = fullWidth(analysis.spaceOf.get(node.inputs[0])!);
            const positions = node.inputShapes[0][0] / groupWidth;
            const features: number[] = [];
            for (let p = 0; p < positions; p++) for (const c of inKeep) features.push(p * groupWidth + c);
            w.kernel = sliceAxis(w.kernel, 0, features);
          }
          if (outKeep) {
            w.kernel = sliceAxis(w.kernel, 1, outKeep);
            if (w.bias) w.bias = sliceAxis(w.bias, 0, outKeep);
          }
        }
        node.config.units = widthOf(node.id);
        break;
      case 'BatchNormalization': {
        // An identity branch BN(x) sits in the block's output group while it reads the block's input.
        const isIdentityBranch = analysis.spaceOf.get(node.id) !== analysis.spaceOf.get(node.inputs[0]);
        if (isIdentityBranch && (inKeep || outKeep)) {
          const inWidth = widthOf(node.inputs[0]);
          const inList = inKeep ?? [...Array(inWidth).keys()];
          const outList = outKeep ?? [...Array(widthOf(node.id)).keys()];
          if (!sameList(inList, outList)) newNodes.set(node.id, [selectionConv(graph, node, inList, outList)]);
        }
        if (w && firstCall && outKeep) for (const key of Object.keys(w)) w[key] = sliceAxis(w[key], 0, outKeep);
        break;
      }
      case 'DepthwiseBinaryConv':
        if (w && firstCall && outKeep) w.latent = sliceAxis(w.latent, 0, outKeep);
        break;
      default:
        break;
    }
  }

  // Insert selection convs in front of identity BNs whose channel sets differ.
  const inserted = new Set<string>();
  for (const [bnId, nodes] of newNodes) {
    const at = graph.nodes.findIndex((n) => n.id === bnId);
    graph.nodes.splice(at, 0, ...nodes);
    byId.get(bnId)!.inputs = [nodes[nodes.length - 1].id];
    for (const n of nodes) inserted.add(n.id);
  }
  // Shapes follow the new widths.
  const shapes = new Map<string, number[]>();
  for (const node of graph.nodes) {
    node.inputShapes = node.inputs.map((id) => shapes.get(id)!.slice());
    const shape = node.outputShape.slice();
    if (node.className === 'Flatten') shape[0] = node.inputShapes[0].reduce((a, b) => a * b, 1);
    else if (inserted.has(node.id)) shape[shape.length - 1] = node.config.filters;
    else if (node.className !== 'InputLayer') shape[shape.length - 1] = widthOf(node.id);
    node.outputShape = shape;
    shapes.set(node.id, shape);
  }
  return graph;
}

/** A 1x1 conv that copies input channel inList[i] to output o when inList[i] == outList[o], else 0. */
function selectionConv(graph: ModelGraph, bn: GraphNode, inList: number[], outList: number[]): GraphNode {
  const name = `${bn.layerName}_select`;
  const kernel = new Float32Array(inList.length * outList.length);
  const position = new Map(inList.map((c, i) => [c, i]));
  outList.forEach((c, o) => {
    const i = position.get(c);
    if (i !== undefined) kernel[i * outList.length + o] = 1;
  });
  graph.weights.set(name, { kernel: { shape: [1, 1, inList.length, outList.length], values: kernel } });
  return {
    id: name,
    layerName: name,
    className: 'Conv2D',
    config: { ...conv2dConfig(name, outList.length, [1, 1], [1, 1], 'valid'), use_bias: false },
    inputs: [bn.inputs[0]],
    inputShapes: [],
    outputShape: [...bn.outputShape.slice(0, -1), outList.length],
  };
}
