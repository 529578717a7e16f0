import { analyzeGraph, GraphAnalysis, maskInsertionPoints, prunableGroups } from '../graph/analysis';
import { cloneGraph, GraphNode, ModelGraph } from '../graph/modelGraph';

export const DBC_CLASS_NAME = 'DepthwiseBinaryConv';

/** Which DBC layer holds each prunable group's mask. */
export interface MaskLayout {
  /** Group id -> DBC layer name. */
  layerOfGroup: Map<string, string>;
}

/** The mask layout of a graph that already has DBC layers. */
export function maskLayoutOf(graph: ModelGraph, analysis: GraphAnalysis = analyzeGraph(graph)): MaskLayout {
  const layerOfGroup = new Map<string, string>();
  for (const node of graph.nodes) {
    if (node.className !== DBC_CLASS_NAME) continue;
    const group = analysis.spaceOf.get(node.id)!;
    if (analysis.groupById.get(group)!.prunable && !layerOfGroup.has(group)) layerOfGroup.set(group, node.layerName);
  }
  return { layerOfGroup };
}

export function hasMasks(graph: ModelGraph): boolean {
  return graph.nodes.some((n) => n.className === DBC_CLASS_NAME);
}

/**
 * Inserts one DBC mask layer per prunable group, after each of the group's producer units;
 * coupled channels (several producers) share the one layer. Latents start at `initialValue`
 * (1.0: every channel kept), or at the given per-group values.
 */
export function insertMasks(
  input: ModelGraph,
  options: { initialValue?: number; latents?: Map<string, Float32Array> } = {},
): { graph: ModelGraph; layout: MaskLayout } {
  if (hasMasks(input)) throw new Error('the model already has DBC mask layers');
  const analysis = analyzeGraph(input);
  const graph = cloneGraph(input);
  const layerOfGroup = new Map<string, string>();
  const taken = new Set(graph.nodes.map((n) => n.layerName));
  for (const group of prunableGroups(analysis)) {
    let name = `${group.name}_dbc`;
    for (let i = 1; taken.has(name); i++) name = `${group.name}_dbc_${i}`;
    taken.add(name);
    layerOfGroup.set(group.id, name);
    const initial = options.latents?.get(group.id) ?? new Float32Array(group.width).fill(options.initialValue ?? 1.0);
    graph.weights.set(name, { latent: { shape: [group.width], values: Float32Array.from(initial) } });
    // Calls are numbered in graph order: tfjs rebuilds a shared layer's calls by index and loops
    // forever when call k needs a tensor that only exists after call k+1 (MobileNetV2 from ONNX).
    const position = new Map(graph.nodes.map((n, i) => [n.id, i]));
    const points = maskInsertionPoints(analysis, group).slice().sort((a, b) => position.get(a)! - position.get(b)!);
    points.forEach((pointId, call) => {
      const point = graph.nodes.find((n) => n.id === pointId)!;
      const id = call === 0 ? name : `${name}@${call}`;
      const node: GraphNode = {
        id,
        layerName: name,
        className: DBC_CLASS_NAME,
        config: { name, trainable: true, initial_value: options.initialValue ?? 1.0 },
        inputs: [pointId],
        inputShapes: [point.outputShape.slice()],
        outputShape: point.outputShape.slice(),
      };
      for (const other of graph.nodes) other.inputs = other.inputs.map((x) => (x === pointId ? id : x));
      graph.outputIds = graph.outputIds.map((x) => (x === pointId ? id : x));
      graph.nodes.splice(graph.nodes.indexOf(point) + 1, 0, node);
    });
  }
  return { graph, layout: { layerOfGroup } };
}
