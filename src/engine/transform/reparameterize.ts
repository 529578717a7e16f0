import { findFusableBlocks, FusableBlock, isMaskCommutingActivation } from '../graph/analysis';
import { cloneGraph, GraphIndex, GraphNode, ModelGraph } from '../graph/modelGraph';
import { KEEP_THRESHOLD } from '../layers/dbc';

/**
 * Structural reparameterization: the training-time graph becomes the deployed one.
 * 1. every multi-branch block (3x3+BN, 1x1+BN, identity BN) becomes one conv with bias;
 * 2. every BN that follows a conv is folded into it;
 * 3. every DBC mask is folded into the conv that produces its channels (relu(z) * m == relu(z * m)
 *    for m in {0, 1}), so the deployed graph has no Add (of fused blocks), no BN and no mask.
 * The input graph is not modified.
 */
export function reparameterizeGraph(input: ModelGraph): ModelGraph {
  const graph = cloneGraph(input);
  for (const block of findFusableBlocks(new GraphIndex(graph))) fuseBlock(graph, block);
  foldBatchNorms(graph);
  foldMasks(graph);
  return graph;
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

/** ZeroPadding2D's config as [[top, bottom], [left, right]]. */
function paddingOf(node: GraphNode): [[number, number], [number, number]] {
  const p = node.config.padding;
  if (typeof p === 'number') return [[p, p], [p, p]];
  if (Array.isArray(p) && typeof p[0] === 'number') return [[p[0], p[0]], [p[1], p[1]]];
  return [[p[0][0], p[0][1]], [p[1][0], p[1][1]]];
}

/** Implicit top/left padding of a conv, as TensorFlow computes it for 'same'. */
function convPadding(node: GraphNode): [number, number] {
  if (node.config.padding !== 'same') return [0, 0];
  const [kh, kw] = pair(node.config.kernel_size, 1);
  const [sh, sw] = pair(node.config.strides, 1);
  const [inH, inW] = node.inputShapes[0];
  const [outH, outW] = node.outputShape;
  const totalH = Math.max((outH - 1) * sh + kh - inH, 0);
  const totalW = Math.max((outW - 1) * sw + kw - inW, 0);
  return [Math.floor(totalH / 2), Math.floor(totalW / 2)];
}

interface BatchNormFold {
  scale: Float32Array;
  shift: Float32Array;
}

/** BN(z) = z * scale + shift, per channel. */
function batchNormAsAffine(graph: ModelGraph, bn: GraphNode): BatchNormFold {
  const w = graph.weights.get(bn.layerName)!;
  const mean = w.moving_mean.values;
  const variance = w.moving_variance.values;
  const eps = bn.config.epsilon ?? 1e-3;
  const n = mean.length;
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const gamma = w.gamma ? w.gamma.values[c] : 1;
    const beta = w.beta ? w.beta.values[c] : 0;
    // Float64 for the fold itself: the deployed model should differ from the original by float32 rounding only.
    const s = gamma / Math.sqrt(variance[c] + eps);
    scale[c] = s;
    shift[c] = beta - mean[c] * s;
  }
  return { scale, shift };
}

function uniqueLayerName(graph: ModelGraph, wanted: string): string {
  const taken = new Set(graph.nodes.map((n) => n.layerName));
  let name = wanted;
  for (let i = 1; taken.has(name); i++) name = `${wanted}_${i}`;
  return name;
}

/** Replaces `oldId` by `newId` in every consumer and in the outputs. */
function rewire(graph: ModelGraph, oldId: string, newId: string): void {
  for (const node of graph.nodes) node.inputs = node.inputs.map((id) => (id === oldId ? newId : id));
  graph.outputIds = graph.outputIds.map((id) => (id === oldId ? newId : id));
}

function removeNodes(graph: ModelGraph, ids: Set<string>): void {
  graph.nodes = graph.nodes.filter((n) => !ids.has(n.id));
  const live = new Set(graph.nodes.map((n) => n.layerName));
  for (const layer of [...graph.weights.keys()]) if (!live.has(layer)) graph.weights.delete(layer);
}

function fuseBlock(graph: ModelGraph, block: FusableBlock): void {
  const index = new GraphIndex(graph);
  const add = index.node(block.addId);
  const source = index.node(block.sourceId);
  const inC = source.outputShape[2];
  const outC = add.outputShape[2];
  const [outH, outW] = add.outputShape;

  interface Branch { kh: number; kw: number; padTop: number; padLeft: number; stride: [number, number]; kernel: Float32Array; bias: Float32Array }
  const branches: Branch[] = block.branches.map((b) => {
    let kh = 1, kw = 1, padTop = 0, padLeft = 0;
    let stride: [number, number] = [1, 1];
    let kernel: Float32Array;
    let bias = new Float32Array(outC);
    if (b.convId) {
      const conv = index.node(b.convId);
      [kh, kw] = pair(conv.config.kernel_size, 1);
      stride = pair(conv.config.strides, 1);
      [padTop, padLeft] = convPadding(conv);
      if (b.padId) {
        const p = paddingOf(index.node(b.padId));
        padTop += p[0][0];
        padLeft += p[1][0];
      }
      const w = graph.weights.get(conv.layerName)!;
      kernel = Float32Array.from(w.kernel.values);
      if (w.bias) bias = Float32Array.from(w.bias.values);
    } else {
      // Identity branch: a 1x1 kernel with 1 at (c, c).
      kernel = new Float32Array(inC * outC);
      for (let c = 0; c < outC; c++) kernel[c * outC + c] = 1;
    }
    if (b.bnId) {
      const { scale, shift } = batchNormAsAffine(graph, index.node(b.bnId));
      for (let i = 0; i < kernel.length; i++) kernel[i] *= scale[i % outC];
      for (let o = 0; o < outC; o++) bias[o] = bias[o] * scale[o] + shift[o];
    }
    return { kh, kw, padTop, padLeft, stride, kernel, bias };
  });

  const stride = branches[0].stride;
  if (branches.some((b) => b.stride[0] !== stride[0] || b.stride[1] !== stride[1])) {
    throw new Error(`block '${add.layerName}': branches have different strides`);
  }
  const padTop = Math.max(...branches.map((b) => b.padTop));
  const padLeft = Math.max(...branches.map((b) => b.padLeft));
  const kh = Math.max(...branches.map((b) => padTop - b.padTop + b.kh));
  const kw = Math.max(...branches.map((b) => padLeft - b.padLeft + b.kw));
  const kernel = new Float32Array(kh * kw * inC * outC);
  const bias = new Float32Array(outC);
  for (const b of branches) {
    const dy = padTop - b.padTop;
    const dx = padLeft - b.padLeft;
    for (let y = 0; y < b.kh; y++) {
      for (let x = 0; x < b.kw; x++) {
        const src = (y * b.kw + x) * inC * outC;
        const dst = ((y + dy) * kw + (x + dx)) * inC * outC;
        for (let i = 0; i < inC * outC; i++) kernel[dst + i] += b.kernel[src + i];
      }
    }
    for (let o = 0; o < outC; o++) bias[o] += b.bias[o];
  }

  const [inH, inW] = source.outputShape;
  const prefix = add.layerName.replace(/_add$/, '');
  const convName = uniqueLayerName(graph, `${prefix}_reparam`);
  const newNodes: GraphNode[] = [];
  let convInput = source.id;
  let convInputShape = source.outputShape.slice();
  const symmetricSame = stride[0] === 1 && stride[1] === 1 && padTop * 2 + 1 === kh && padLeft * 2 + 1 === kw;
  if (!symmetricSame && (padTop > 0 || padLeft > 0)) {
    const padBottom = Math.max(0, (outH - 1) * stride[0] + kh - inH - padTop);
    const padRight = Math.max(0, (outW - 1) * stride[1] + kw - inW - padLeft);
    const padName = uniqueLayerName(graph, `${prefix}_reparam_pad`);
    convInputShape = [inH + padTop + padBottom, inW + padLeft + padRight, inC];
    newNodes.push({
      id: padName,
      layerName: padName,
      className: 'ZeroPadding2D',
      config: { name: padName, trainable: true, padding: [[padTop, padBottom], [padLeft, padRight]], data_format: 'channels_last' },
      inputs: [source.id],
      inputShapes: [source.outputShape.slice()],
      outputShape: convInputShape,
      origin: source.origin ?? source.id,
    });
    convInput = padName;
  }
  newNodes.push({
    id: convName,
    layerName: convName,
    className: 'Conv2D',
    config: conv2dConfig(convName, outC, [kh, kw], stride, symmetricSame ? 'same' : 'valid'),
    inputs: [convInput],
    inputShapes: [convInputShape],
    outputShape: add.outputShape.slice(),
    origin: add.origin ?? add.id,
  });
  graph.weights.set(convName, { kernel: { shape: [kh, kw, inC, outC], values: kernel }, bias: { shape: [outC], values: bias } });

  const at = graph.nodes.findIndex((n) => n.id === add.id);
  graph.nodes.splice(at, 0, ...newNodes);
  rewire(graph, add.id, convName);
  removeNodes(graph, new Set(block.memberIds));
}

/** A plain Conv2D config in model.json form. */
export function conv2dConfig(name: string, filters: number, kernel: [number, number], strides: [number, number], padding: 'same' | 'valid'): Record<string, any> {
  return {
    name,
    trainable: true,
    filters,
    kernel_size: kernel,
    strides,
    padding,
    data_format: 'channels_last',
    dilation_rate: [1, 1],
    activation: 'linear',
    use_bias: true,
    kernel_initializer: { class_name: 'Zeros', config: {} },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  };
}

/** Output channel of each kernel element: the last axis (Conv2D) or cin * multiplier + m (DepthwiseConv2D). */
function scaleOutputChannels(graph: ModelGraph, conv: GraphNode, scale: ArrayLike<number>, shift?: ArrayLike<number>): void {
  const w = graph.weights.get(conv.layerName)!;
  const outC = scale.length;
  const kernel = w.kernel ?? w.depthwise_kernel;
  for (let i = 0; i < kernel.values.length; i++) kernel.values[i] *= scale[i % outC];
  if (!shift && !w.bias) return;
  const bias = w.bias ? w.bias.values : new Float32Array(outC);
  for (let o = 0; o < outC; o++) bias[o] = bias[o] * scale[o] + (shift ? shift[o] : 0);
  if (!w.bias) {
    w.bias = { shape: [outC], values: bias };
    conv.config.use_bias = true;
    conv.config.bias_initializer ??= { class_name: 'Zeros', config: {} };
  }
}

function foldBatchNorms(graph: ModelGraph): void {
  for (;;) {
    const index = new GraphIndex(graph);
    const bn = graph.nodes.find((n) => {
      if (n.className !== 'BatchNormalization') return false;
      const producer = index.node(n.inputs[0]);
      const foldable = producer.className === 'Conv2D' || (producer.className === 'DepthwiseConv2D' && (producer.config.depth_multiplier ?? 1) === 1);
      return foldable && index.consumersOf(producer.id).length === 1 && !index.isOutput(producer.id) && producer.id === producer.layerName;
    });
    if (!bn) return;
    const conv = index.node(bn.inputs[0]);
    const { scale, shift } = batchNormAsAffine(graph, bn);
    scaleOutputChannels(graph, conv, scale, shift);
    rewire(graph, bn.id, conv.id);
    removeNodes(graph, new Set([bn.id]));
  }
}

function foldMasks(graph: ModelGraph): void {
  const index = new GraphIndex(graph);
  const removed = new Set<string>();
  for (const dbc of graph.nodes.filter((n) => n.className === 'DepthwiseBinaryConv')) {
    const latent = graph.weights.get(dbc.layerName)!.latent.values;
    const mask = Array.from(latent, (v) => (v > KEEP_THRESHOLD ? 1 : 0));
    let cur = index.node(dbc.inputs[0]);
    while (isMaskCommutingActivation(cur) && index.consumersOf(cur.id).length === 1) cur = index.node(cur.inputs[0]);
    const foldable = ['Conv2D', 'DepthwiseConv2D', 'Dense'].includes(cur.className) && index.consumersOf(cur.id).length === 1;
    if (mask.every((m) => m === 1)) {
      // An all-ones mask is the identity.
    } else if (foldable) {
      scaleOutputChannels(graph, cur, mask);
    } else {
      continue; // Left in place: the deployed graph keeps this mask layer.
    }
    rewire(graph, dbc.id, dbc.inputs[0]);
    removed.add(dbc.id);
  }
  // Weights of a shared mask go only when no call of it is left.
  removeNodes(graph, removed);
}

