import { analyzeGraph, GraphAnalysis, keptIndicesOfNode } from '../graph/analysis';
import { ruleOf, sliceAxis } from '../graph/layerRules';
import { cloneGraph, GraphNode, ModelGraph } from '../graph/modelGraph';
import { keptChannelIndices } from '../layers/dbc';
import { DBC_CLASS_NAME } from './masks';
import { conv2dConfig } from './reparameterize';

/** Kept channel indices (ascending) per prunable group id. Groups not listed keep every channel. */
export type KeptChannels = Map<string, number[]>;

/**
 * The binary masks a graph's DBC layers hold, as kept channel indices per group
 * ({@link keptChannelIndices}: a group whose mask drops every channel keeps its strongest one).
 */
export function keptChannelsFromMasks(graph: ModelGraph, analysis: GraphAnalysis = analyzeGraph(graph)): KeptChannels {
  const kept: KeptChannels = new Map();
  for (const node of graph.nodes) {
    if (node.className !== DBC_CLASS_NAME) continue;
    const group = analysis.groupById.get(analysis.spaceOf.get(node.id)!)!;
    if (!group.prunable || kept.has(group.id)) continue;
    kept.set(group.id, keptChannelIndices(graph.weights.get(node.layerName)!.latent.values));
  }
  return kept;
}

export { sliceAxis };

const sameList = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Physically removes channels, asking each layer's rule how: the output channels of every layer
 * in a pruned group and the matching input channels of every consumer (at their offsets behind a
 * concatenation, per position behind a Flatten). The result computes exactly what the masked
 * graph computes. An identity branch of a multi-branch block whose input and output keep
 * different channels becomes a 1x1 selection conv (with its BN), which reparameterizes as before.
 */
export function pruneGraph(input: ModelGraph, kept: KeptChannels): ModelGraph {
  const analysis = analyzeGraph(input);
  const graph = cloneGraph(input);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const keepOf = (nodeId: string): number[] | undefined => keptIndicesOfNode(analysis, nodeId, kept);
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
    const rule = ruleOf(node);
    const move = rule.channels(node).kind;
    const w = graph.weights.get(node.layerName);
    const inKeep = node.inputs.length > 0 ? keepOf(node.inputs[0]) : undefined;
    const outKeep = keepOf(node.id);
    const firstCall = !prunedLayers.has(node.layerName);
    prunedLayers.add(node.layerName);
    // An identity branch BN(x) of a block sits in the block's output group while it reads the block's input.
    const block = analysis.blockOfMember.get(node.id);
    if (block && block.branches.some((b) => b.bnId === node.id && !b.convId) && (inKeep || outKeep)) {
      const inList = inKeep ?? [...Array(widthOf(node.inputs[0])).keys()];
      const outList = outKeep ?? [...Array(widthOf(node.id)).keys()];
      if (!sameList(inList, outList)) newNodes.set(node.id, [selectionConv(graph, node, inList, outList)]);
    }
    if (w && firstCall) {
      if (move === 'create' && inKeep) rule.cutInputs?.(node, w, inKeep);
      if ((move === 'create' || move === 'follow') && outKeep) rule.cutOutputs?.(node, w, outKeep);
    }
    if (move === 'create' || move === 'follow') rule.setWidth?.(node, widthOf(node.id));
  }

  // Insert selection convs in front of identity BNs whose channel sets differ.
  const inserted = new Set<string>();
  for (const [bnId, nodes] of newNodes) {
    const at = graph.nodes.findIndex((n) => n.id === bnId);
    graph.nodes.splice(at, 0, ...nodes);
    byId.get(bnId)!.inputs = [nodes[nodes.length - 1].id];
    for (const n of nodes) inserted.add(n.id);
  }
  // Shapes follow the new widths: the last axis of every output is its kept channels.
  const shapes = new Map<string, number[]>();
  for (const node of graph.nodes) {
    node.inputShapes = node.inputs.map((id) => shapes.get(id)!.slice());
    const shape = node.outputShape.slice();
    shape[shape.length - 1] = inserted.has(node.id) ? node.config.filters : widthOf(node.id);
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
