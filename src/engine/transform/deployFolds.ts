/**
 * Deploy-time folds that make the deployed model faster without changing what it computes:
 * 1. an identity-at-inference layer (dropout) is skipped;
 * 2. a ZeroPadding2D in front of a 'valid' conv that pads exactly as TensorFlow's 'same' would
 *    (Keras' `correct_pad` before a stride-2 conv on an even map: 0 before, 1 after) becomes the
 *    conv's own 'same' padding: no padded copy of the feature map;
 * 3. an activation layer after a linear producer becomes the producer's `activation` when the layer
 *    computes that named activation exactly (ReLU -> 'relu'): tfjs-layers' Conv2D and Dense then run
 *    one fused kernel instead of a conv and a separate pass over the output.
 * 4. a relu6 that tfjs-layers would compute as minimum(6, relu(x)) (an Activation('relu6') layer, or
 *    a conv's 'relu6' activation) becomes a ReLU(max_value 6) layer: relu + clipByValue, the same
 *    function; the wasm backend's broadcasting Minimum took 12-31x its time (bench/wasm-ops.ts).
 * Which layers take part is the layer rules' `deploy` role; the algorithms test no class names.
 * On the wasm backend each removed layer was a full pass over a feature map (docs/latency.md).
 */
import { DeployRole, ruleOf } from '../graph/layerRules';
import { relu6LayerConfig } from '../graph/layerRules/channelwise';
import { GraphIndex, GraphNode, ModelGraph } from '../graph/modelGraph';

type Role<K extends DeployRole['kind']> = Extract<DeployRole, { kind: K }>;
const deployOf = <K extends DeployRole['kind']>(node: GraphNode, kind: K): Role<K> | undefined => {
  const role = ruleOf(node).deploy;
  return role?.kind === kind ? (role as Role<K>) : undefined;
};

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined || v === null ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

/** Applies the folds in this order, each once over the graph. The graph is changed in place. */
export function applyDeployFolds(graph: ModelGraph): void {
  dropIdentities(graph);
  foldPaddings(graph);
  foldActivations(graph);
  useFasterActivations(graph);
}

/** The layer is called once: its config may change without changing another call. */
const calledOnce = (graph: ModelGraph, node: GraphNode) => graph.nodes.every((n) => n === node || n.layerName !== node.layerName);

/** The node's single consumer, when it has exactly one and is not a model output nor a shared layer's call. */
function soleConsumer(index: GraphIndex, node: GraphNode): GraphNode | undefined {
  const consumers = index.consumersOf(node.id);
  return consumers.length === 1 && !index.isOutput(node.id) && calledOnce(index.graph, node) ? consumers[0] : undefined;
}

/** Removes `node` (one input) from the graph: its consumers read its input instead. */
function bypass(graph: ModelGraph, node: GraphNode): void {
  const source = node.inputs[0];
  for (const other of graph.nodes) other.inputs = other.inputs.map((id) => (id === node.id ? source : id));
  graph.nodes = graph.nodes.filter((n) => n !== node);
  if (!graph.nodes.some((n) => n.layerName === node.layerName)) graph.weights.delete(node.layerName);
}

/** Identity layers go, unless one is a model output (its name is the output's name). */
function dropIdentities(graph: ModelGraph): void {
  const index = new GraphIndex(graph);
  for (const node of graph.nodes.filter((n) => deployOf(n, 'identity') && n.inputs.length === 1 && !index.isOutput(n.id))) bypass(graph, node);
}

/**
 * TensorFlow's 'same' padding of one axis for a window op: [before, after], or undefined when the
 * output size is not 'same''s ceil(in / stride).
 */
export function samePadding(inSize: number, outSize: number, kernel: number, stride: number): [number, number] | undefined {
  if (outSize !== Math.ceil(inSize / stride)) return undefined;
  const total = Math.max((outSize - 1) * stride + kernel - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** A ZeroPadding2D + 'valid' window op that is exactly the op with 'same' padding on the unpadded map. */
function paddingFoldable(index: GraphIndex, pad: GraphNode): GraphNode | undefined {
  const padding = deployOf(pad, 'padding');
  const conv = soleConsumer(index, pad);
  if (!padding || !conv || conv.inputs.length !== 1 || !calledOnce(index.graph, conv)) return undefined;
  if (!deployOf(conv, 'linear')?.takesSamePadding?.(conv)) return undefined;
  const [[top, bottom], [left, right]] = padding.padding(pad);
  const [inH, inW] = pad.inputShapes[0];
  const [outH, outW] = conv.outputShape;
  const [kh, kw] = pair(conv.config.kernel_size, 1);
  const [sh, sw] = pair(conv.config.strides, 1);
  const rows = samePadding(inH, outH, kh, sh);
  const cols = samePadding(inW, outW, kw, sw);
  const exact = rows !== undefined && cols !== undefined && rows[0] === top && rows[1] === bottom && cols[0] === left && cols[1] === right;
  return exact ? conv : undefined;
}

function foldPaddings(graph: ModelGraph): void {
  const index = new GraphIndex(graph);
  for (const pad of [...graph.nodes]) {
    const conv = paddingFoldable(index, pad);
    if (!conv) continue;
    conv.config.padding = 'same';
    conv.inputShapes = [pad.inputShapes[0].slice()];
    bypass(graph, pad);
  }
}

/** A linear producer with a linear activation takes over the activation layer after it. */
function foldActivations(graph: ModelGraph): void {
  const index = new GraphIndex(graph);
  for (const act of [...graph.nodes]) {
    const name = deployOf(act, 'activation')?.activationName(act);
    if (!name || act.inputs.length !== 1 || index.isOutput(act.id) || !calledOnce(graph, act)) continue;
    const producer = index.node(act.inputs[0]);
    if (soleConsumer(index, producer) !== act || !deployOf(producer, 'linear')?.takesActivation?.(producer)) continue;
    producer.config.activation = name;
    bypass(graph, act);
  }
}

function uniqueLayerName(graph: ModelGraph, wanted: string): string {
  const taken = new Set(graph.nodes.map((n) => n.layerName));
  let name = wanted;
  for (let i = 1; taken.has(name); i++) name = `${wanted}_${i}`;
  return name;
}

/** Activation layers with a faster stock equivalent become it; a producer's slow relu6 becomes a ReLU layer after it. */
function useFasterActivations(graph: ModelGraph): void {
  for (const node of graph.nodes) {
    const faster = deployOf(node, 'activation')?.fasterLayer?.(node);
    if (!faster) continue;
    node.className = faster.className;
    node.config = faster.config;
  }
  const index = new GraphIndex(graph);
  for (const producer of [...graph.nodes]) {
    const slowRelu6 = String(producer.config.activation ?? '').toLowerCase() === 'relu6';
    if (!slowRelu6 || !deployOf(producer, 'linear') || index.isOutput(producer.id) || !calledOnce(graph, producer)) continue;
    const name = uniqueLayerName(graph, `${producer.layerName}_relu6`);
    const relu: GraphNode = {
      id: name,
      layerName: name,
      className: 'ReLU',
      config: relu6LayerConfig(name, producer.config.trainable ?? true),
      inputs: [producer.id],
      inputShapes: [producer.outputShape.slice()],
      outputShape: producer.outputShape.slice(),
      origin: producer.origin ?? producer.id,
    };
    producer.config.activation = 'linear';
    for (const consumer of index.consumersOf(producer.id)) consumer.inputs = consumer.inputs.map((id) => (id === producer.id ? name : id));
    graph.nodes.splice(graph.nodes.indexOf(producer) + 1, 0, relu);
  }
}
