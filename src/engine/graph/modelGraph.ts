import * as tf from '@tensorflow/tfjs';
// The engine's own layer classes must be registered before a graph is built.
import '../layers/registered';

/** A weight held outside tfjs, so graph transforms are exact array work with no tensor lifetimes. */
export interface WeightArray {
  shape: number[];
  values: Float32Array;
}

/**
 * One call of a layer in the model's graph. A layer called more than once (a shared DBC mask on
 * coupled channels) gives one node per call, all with the same `layerName`.
 */
export interface GraphNode {
  /** Unique node id: the layer name for its first call, `name@k` for call k > 0. */
  id: string;
  layerName: string;
  className: string;
  /** Keras-format (snake_case) layer config, as model.json stores it. */
  config: Record<string, any>;
  inputs: string[];
  /** Shapes without the batch dimension. */
  inputShapes: number[][];
  outputShape: number[];
  /** For nodes a transform created: the training-time node whose output channels this node carries. */
  origin?: string;
}

/**
 * The model as a plain data structure: nodes in topological order (inputs first), weights per layer
 * keyed by their short name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`,
 * `moving_variance`, `depthwise_kernel`, `latent`).
 */
export interface ModelGraph {
  name: string;
  nodes: GraphNode[];
  inputIds: string[];
  outputIds: string[];
  weights: Map<string, Record<string, WeightArray>>;
}

const nodeId = (layerName: string, nodeIndex: number) => (nodeIndex === 0 ? layerName : `${layerName}@${nodeIndex}`);

function shortWeightName(fullName: string): string {
  const slash = fullName.lastIndexOf('/');
  return (slash >= 0 ? fullName.slice(slash + 1) : fullName).replace(/:\d+$/, '');
}

/** The snake_case config of every layer, as `model.toJSON` writes it (Sequential and functional). */
function layerConfigs(model: tf.LayersModel): Map<string, { className: string; config: Record<string, any> }> {
  const topology = model.toJSON(null, false) as any;
  const list: any[] = Array.isArray(topology.config) ? topology.config : topology.config.layers;
  const map = new Map<string, { className: string; config: Record<string, any> }>();
  for (const entry of list) map.set(entry.config.name, { className: entry.class_name, config: entry.config });
  return map;
}

/** Reads the graph and a copy of every weight out of a tfjs model (the model is left untouched). */
export function graphFromModel(model: tf.LayersModel): ModelGraph {
  const configs = layerConfigs(model);
  const nodes: GraphNode[] = [];
  const visited = new Set<string>();
  const weights = new Map<string, Record<string, WeightArray>>();

  // A nested model's input layers stand for the outer tensors the nested model was called on.
  const substitutes = new Map<tf.layers.Layer, string>();
  const visit = (layer: tf.layers.Layer, nodeIndex: number): string => {
    const substitute = substitutes.get(layer);
    if (substitute !== undefined) return substitute;
    const id = nodeId(layer.name, nodeIndex);
    if (visited.has(id)) return id;
    visited.add(id);
    const inbound = layer.inboundNodes[nodeIndex];
    const inputs = inbound.inboundLayers.map((parent, i) => visit(parent, inbound.nodeIndices[i]));
    if (layer instanceof tf.LayersModel) return inlineNestedModel(layer, inputs);
    const className = layer.getClassName();
    let config: Record<string, any>;
    if (className === 'InputLayer') {
      const shape = (inbound.outputShapes as tf.Shape[])[0] ?? inbound.outputShapes;
      config = { batch_input_shape: shape, dtype: 'float32', sparse: false, name: layer.name };
    } else {
      const entry = configs.get(layer.name);
      if (!entry) throw new Error(`layer '${layer.name}' is missing from the model topology`);
      config = structuredClone(entry.config);
      // tfjs 4.22's SeparableConv2D.getConfig leaves out depth_multiplier: without it the rebuilt layer has the wrong kernel.
      const multiplier = (layer as unknown as { depthMultiplier?: number }).depthMultiplier;
      if (multiplier !== undefined && config.depth_multiplier === undefined) config.depth_multiplier = multiplier;
    }
    const asList = (s: any): number[][] => (Array.isArray(s[0]) || s[0] === undefined ? s : [s]);
    const outputShapes = asList(inbound.outputShapes as any);
    nodes.push({
      id,
      layerName: layer.name,
      className,
      config,
      inputs,
      inputShapes: className === 'InputLayer' ? [] : asList(inbound.inputShapes as any).map((s) => s.slice(1) as number[]),
      outputShape: (outputShapes[0] as number[]).slice(1),
    });
    if (!weights.has(layer.name) && layer.weights.length > 0) {
      const values = layer.getWeights();
      const record: Record<string, WeightArray> = {};
      layer.weights.forEach((w, i) => {
        record[shortWeightName(w.originalName)] = { shape: values[i].shape.slice(), values: values[i].dataSync() as Float32Array };
      });
      weights.set(layer.name, record);
    }
    return id;
  };
  /**
   * A model used as a layer (a Keras base model inside a classifier) is inlined: its layers join
   * the graph, reading the tensors it was called on, so PaS sees (and can prune) every conv.
   */
  const inlineNestedModel = (nested: tf.LayersModel, inputs: string[]): string => {
    if (nested.outputs.length !== 1 || nested.inputs.length !== inputs.length) {
      throw new Error(`nested model '${nested.name}' has ${nested.inputs.length} inputs and ${nested.outputs.length} outputs; PaS inlines single-output nested models only`);
    }
    for (const [name, entry] of layerConfigs(nested)) configs.set(name, entry);
    nested.inputs.forEach((t, i) => substitutes.set(t.sourceLayer as tf.layers.Layer, inputs[i]));
    const output = nested.outputs[0];
    return visit(output.sourceLayer as tf.layers.Layer, output.nodeIndex);
  };

  const outputIds = model.outputs.map((t) => visit(t.sourceLayer as tf.layers.Layer, t.nodeIndex));
  const inputIds = nodes.filter((n) => n.className === 'InputLayer').map((n) => n.id);
  // Copy typed arrays: dataSync may hand back the backend's own buffer.
  for (const record of weights.values()) {
    for (const key of Object.keys(record)) record[key] = { shape: record[key].shape, values: Float32Array.from(record[key].values) };
  }
  return { name: model.name, nodes, inputIds, outputIds, weights };
}

/** Builds a tfjs model from the graph and loads its weights. */
export async function modelFromGraph(graph: ModelGraph): Promise<tf.LayersModel> {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const nodeIndexOf = (id: string) => {
    const at = id.lastIndexOf('@');
    return at > 0 ? Number(id.slice(at + 1)) : 0;
  };
  const ref = (id: string) => [byId.get(id)!.layerName, nodeIndexOf(id), 0, {}];
  const layers = new Map<string, any>();
  for (const node of graph.nodes) {
    let entry = layers.get(node.layerName);
    if (!entry) {
      entry = { name: node.layerName, class_name: node.className, config: node.config, inbound_nodes: [] };
      layers.set(node.layerName, entry);
    }
    if (node.inputs.length > 0) entry.inbound_nodes[nodeIndexOf(node.id)] = node.inputs.map(ref);
  }
  const topology = {
    class_name: 'Model',
    config: {
      name: graph.name,
      layers: [...layers.values()],
      input_layers: graph.inputIds.map((id) => [byId.get(id)!.layerName, 0, 0]),
      output_layers: graph.outputIds.map((id) => [byId.get(id)!.layerName, nodeIndexOf(id), 0]),
    },
    keras_version: 'tfjs-layers',
    backend: 'tensor_flow.js',
  };
  const built = await tf.models.modelFromJSON({ modelTopology: topology as any });
  for (const layer of built.layers) {
    const record = graph.weights.get(layer.name);
    if (!record || layer.weights.length === 0) continue;
    const tensors = layer.weights.map((w) => {
      const weight = record[shortWeightName(w.originalName)];
      if (!weight) throw new Error(`no weight '${shortWeightName(w.originalName)}' for layer '${layer.name}'`);
      return tf.tensor(weight.values, weight.shape);
    });
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
  return built;
}

/** Node lookup and consumer lists, computed once per graph. */
export class GraphIndex {
  readonly byId = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();

  constructor(readonly graph: ModelGraph) {
    for (const node of graph.nodes) {
      this.byId.set(node.id, node);
      this.consumers.set(node.id, []);
    }
    for (const node of graph.nodes) for (const input of node.inputs) this.consumers.get(input)!.push(node);
  }

  node(id: string): GraphNode {
    const node = this.byId.get(id);
    if (!node) throw new Error(`no node '${id}' in the graph`);
    return node;
  }

  consumersOf(id: string): GraphNode[] {
    return this.consumers.get(id) ?? [];
  }

  isOutput(id: string): boolean {
    return this.graph.outputIds.includes(id);
  }
}

/** A deep copy of the graph (weights included), for transforms that must not touch their input. */
export function cloneGraph(graph: ModelGraph): ModelGraph {
  const weights = new Map<string, Record<string, WeightArray>>();
  for (const [layer, record] of graph.weights) {
    const copy: Record<string, WeightArray> = {};
    for (const [k, w] of Object.entries(record)) copy[k] = { shape: w.shape.slice(), values: Float32Array.from(w.values) };
    weights.set(layer, copy);
  }
  return {
    name: graph.name,
    nodes: graph.nodes.map((n) => ({ ...n, config: structuredClone(n.config), inputs: n.inputs.slice(), inputShapes: n.inputShapes.map((s) => s.slice()), outputShape: n.outputShape.slice() })),
    inputIds: graph.inputIds.slice(),
    outputIds: graph.outputIds.slice(),
    weights,
  };
}
