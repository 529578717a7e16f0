import { findFusableBlocks, FusableBlock, isMaskCommutingActivation } from '../graph/analysis';
import { DeployRole, ruleOf } from '../graph/layerRules';
import { cloneGraph, GraphIndex, GraphNode, ModelGraph } from '../graph/modelGraph';
import { keptChannelIndices } from '../layers/dbc';
import { applyDeployFolds } from './deployFolds';
import { DBC_CLASS_NAME } from './masks';

/**
 * Structural reparameterization: the training-time graph becomes the deployed one.
 * 1. every multi-branch block (3x3+BN, 1x1+BN, identity BN) becomes one conv with bias;
 * 2. every BN that follows a conv is folded into it;
 * 3. every DBC mask is folded into the conv that produces its channels (relu(z) * m == relu(z * m)
 *    for m in {0, 1}), so the deployed graph has no Add (of fused blocks), no BN and no mask;
 * 4. the speed folds of {@link applyDeployFolds}: dropout skipped, TF-'same' zero padding and a
 *    following ReLU taken into the conv.
 * The input graph is not modified.
 */
export function reparameterizeGraph(input: ModelGraph): ModelGraph {
  return reparameterizeWithReport(input).graph;
}

/** A multi-branch block left unfused (its branches stay, each BN still folds into its conv), and why. */
export interface UnfusedBlock {
  block: string;
  reason: string;
}

export interface ReparameterizeOptions {
  /** Apply {@link applyDeployFolds} (default true; false gives the form without them, to measure what they buy). */
  speedFolds?: boolean;
}

/** {@link reparameterizeGraph}, and the blocks that could not be fused exactly (never fused wrongly). */
export function reparameterizeWithReport(input: ModelGraph, options: ReparameterizeOptions = {}): { graph: ModelGraph; unfused: UnfusedBlock[] } {
  const graph = cloneGraph(input);
  const unfused: UnfusedBlock[] = [];
  for (const block of findFusableBlocks(new GraphIndex(graph))) {
    const reason = fuseBlock(graph, block);
    if (reason) unfused.push({ block: block.addId, reason });
  }
  foldBatchNorms(graph);
  foldMasks(graph);
  if (options.speedFolds !== false) applyDeployFolds(graph);
  return { graph, unfused };
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

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

type Role<K extends DeployRole['kind']> = Extract<DeployRole, { kind: K }>;
const deployOf = <K extends DeployRole['kind']>(node: GraphNode, kind: K): Role<K> | undefined => {
  const role = ruleOf(node).deploy;
  return role?.kind === kind ? (role as Role<K>) : undefined;
};

/** BN(z) = z * scale + shift, per channel, from the BN's rule. */
function batchNormAsAffine(graph: ModelGraph, bn: GraphNode): { scale: Float32Array; shift: Float32Array } {
  return deployOf(bn, 'affine')!.affine(bn, graph.weights.get(bn.layerName)!);
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

/**
 * Sums a block's branches into one conv. Each branch is placed in the fused kernel by its own
 * window origin (its top/left padding, TensorFlow's asymmetric 'same' rule included), so a
 * stride-2 'same' 3x3 on an even map and a 1x1 'valid' branch line up at kernel (0, 0). Returns
 * why the block cannot be fused exactly (and leaves the graph untouched), or undefined.
 */
function fuseBlock(graph: ModelGraph, block: FusableBlock): string | undefined {
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
        const pad = index.node(b.padId);
        const p = deployOf(pad, 'padding')!.padding(pad);
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
  if (branches.some((b) => b.stride[0] !== stride[0] || b.stride[1] !== stride[1])) return 'its branches have different strides';
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
  // The fused conv reads rows -padTop .. (outH - 1) * s - padTop + kh - 1; what lies past the input is zero padding.
  const padBottom = (outH - 1) * stride[0] + kh - inH - padTop;
  const padRight = (outW - 1) * stride[1] + kw - inW - padLeft;
  if (padBottom < 0 || padRight < 0) return 'its branches stop short of the input edge (a crop, not a padding)';
  const sameTop = Math.floor(Math.max((outH - 1) * stride[0] + kh - inH, 0) / 2);
  const sameLeft = Math.floor(Math.max((outW - 1) * stride[1] + kw - inW, 0) / 2);
  // 'same' only when TensorFlow would pad exactly as the branches do (same output size and top/left).
  const asSame =
    outH === Math.ceil(inH / stride[0]) && outW === Math.ceil(inW / stride[1]) && sameTop === padTop && sameLeft === padLeft &&
    Math.max((outH - 1) * stride[0] + kh - inH, 0) === padTop + padBottom && Math.max((outW - 1) * stride[1] + kw - inW, 0) === padLeft + padRight;
  const prefix = add.layerName.replace(/_add$/, '');
  const convName = uniqueLayerName(graph, `${prefix}_reparam`);
  const newNodes: GraphNode[] = [];
  let convInput = source.id;
  let convInputShape = source.outputShape.slice();
  if (!asSame && (padTop > 0 || padLeft > 0 || padBottom > 0 || padRight > 0)) {
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
    config: conv2dConfig(convName, outC, [kh, kw], stride, asSame ? 'same' : 'valid'),
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
  return undefined;
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

/** The linear producer `bn`'s channels come from, when the affine map can fold into it. */
function absorbingProducer(index: GraphIndex, node: GraphNode): GraphNode | undefined {
  const producer = index.node(node.inputs[0]);
  const role = deployOf(producer, 'linear');
  const alone = index.consumersOf(producer.id).length === 1 && !index.isOutput(producer.id) && producer.id === producer.layerName;
  return role && role.canAbsorb(producer) && alone && ruleOf(producer).channels(producer).kind !== 'opaque' ? producer : undefined;
}

function foldBatchNorms(graph: ModelGraph): void {
  for (;;) {
    const index = new GraphIndex(graph);
    const bn = graph.nodes.find((n) => deployOf(n, 'affine') && absorbingProducer(index, n));
    if (!bn) return;
    const conv = index.node(bn.inputs[0]);
    const { scale, shift } = batchNormAsAffine(graph, bn);
    deployOf(conv, 'linear')!.scaleOutputs(conv, graph.weights.get(conv.layerName)!, scale, shift);
    rewire(graph, bn.id, conv.id);
    removeNodes(graph, new Set([bn.id]));
  }
}

/**
 * Folds each DBC mask into the producer of its channels, back across layers a mask commutes
 * with. The kept channels are {@link keptChannelIndices}: the mask layer's own rule.
 */
function foldMasks(graph: ModelGraph): void {
  const index = new GraphIndex(graph);
  const calls = graph.nodes.filter((n) => n.className === DBC_CLASS_NAME);
  const plans = calls.map((dbc) => {
    const latent = graph.weights.get(dbc.layerName)!.latent.values;
    const mask = new Float32Array(latent.length);
    for (const c of keptChannelIndices(latent)) mask[c] = 1;
    let cur = index.node(dbc.inputs[0]);
    while (isMaskCommutingActivation(cur) && ruleOf(cur).partOfUnit?.(cur) && index.consumersOf(cur.id).length === 1) cur = index.node(cur.inputs[0]);
    const role = deployOf(cur, 'linear');
    const identity = mask.every((m) => m === 1);
    const foldable = identity || (role !== undefined && role.canAbsorbMask(cur) && index.consumersOf(cur.id).length === 1 && cur.id === cur.layerName);
    return { dbc, mask, producer: cur, role, identity, foldable };
  });
  // A shared mask layer is removed with all its calls or kept with all of them (calls are numbered from 0).
  const kept = new Set(plans.filter((p) => !p.foldable).map((p) => p.dbc.layerName));
  const removed = new Set<string>();
  for (const plan of plans) {
    if (kept.has(plan.dbc.layerName)) continue;
    if (!plan.identity) plan.role!.scaleOutputs(plan.producer, graph.weights.get(plan.producer.layerName)!, plan.mask);
    rewire(graph, plan.dbc.id, plan.dbc.inputs[0]);
    removed.add(plan.dbc.id);
  }
  removeNodes(graph, removed);
}
