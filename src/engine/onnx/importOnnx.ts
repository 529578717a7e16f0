/**
 * ONNX -> the engine's model: each ONNX operator of a CNN (as torch.onnx.export writes it) becomes
 * stock TF.js Layers classes in NHWC, with weights moved from OIHW to Keras' layouts, so that
 * inspect, search, prune and reparameterize work on it exactly as on a model.json.
 *
 * The layout change is exact, including the two places where NCHW and NHWC disagree:
 * - padding: PyTorch pads symmetrically, TF's 'same' puts the extra row after; an explicit
 *   ZeroPadding2D + 'valid' is used whenever the pads are not TF's own;
 * - flattening: NCHW flattens (c, h, w), NHWC (h, w, c); the classifier's weight rows are permuted
 *   so that the Dense layer reads the features where the Keras Flatten puts them.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { GraphNode, ModelGraph, modelFromGraph, WeightArray } from '../graph/modelGraph';
import { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor, readOnnxModel } from './readOnnx';

/** What an export needs to write the deployed model with the original's interface. */
export interface OnnxSourceInfo {
  file: string;
  inputName: string;
  outputName: string;
  /** The symbolic (or fixed) batch dimension of the original input and output. */
  inputBatchDim: number | string;
  outputBatchDim: number | string;
  opset: number;
  producer: string;
}

export interface ImportedOnnx {
  graph: ModelGraph;
  info: OnnxSourceInfo;
}

/**
 * A tensor of the ONNX graph as the importer holds it: the Keras node computing it, and its ONNX
 * shape without the batch dimension.
 * - 'map': ONNX [C, H, W], Keras [H, W, C].
 * - 'vector': Keras [F]. ONNX [F], or [F, 1, 1] after a global pooling (`pooled`). `order[j]` is the
 *   ONNX feature index that Keras feature j holds (after a Flatten of a map), absent when equal.
 */
interface ValueState {
  kind: 'map' | 'vector';
  id: string;
  shape: number[];
  order?: number[];
  pooled?: boolean;
  /** Known to be >= 0 everywhere (after ReLU, ReLU6, sigmoid...): zero padding equals -inf padding for max pooling. */
  nonNegative: boolean;
  /**
   * A map seen through ONNX as 5-D [groups, C/groups, H, W] (or, `transposed`, [C/groups, groups,
   * H, W]): the middle of PyTorch's channel shuffle (view - transpose - view). Only Transpose and
   * Reshape may read it.
   */
  view?: { groups: number; transposed: boolean };
}

const product = (values: number[]) => values.reduce((a, b) => a * b, 1);

/** A value's ONNX shape without the batch: a 5-D channel view's own, else `shape`. */
function onnxShapeOf(x: ValueState): number[] {
  if (!x.view) return x.shape;
  const [c, h, w] = x.shape;
  const { groups, transposed } = x.view;
  return transposed ? [c / groups, groups, h, w] : [groups, c / groups, h, w];
}

/** The symbolic batch size in folded shape arithmetic (Reshape treats it as "keep the batch"). */
const BATCH_DIM = -2;

/** Transposes a dense row-major array of shape `dims` by `perm` (like numpy.transpose). */
export function transposeArray(values: Float32Array, dims: number[], perm: number[]): WeightArray {
  const outDims = perm.map((p) => dims[p]);
  const rank = dims.length;
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * dims[i + 1];
  const strideOfOut = perm.map((p) => inStrides[p]);
  const out = new Float32Array(values.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let source = 0;
    for (let i = 0; i < rank; i++) source += index[i] * strideOfOut[i];
    out[o] = values[source];
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i] < outDims[i]) break;
      index[i] = 0;
    }
  }
  return { shape: outDims, values: out };
}

/** TensorFlow's 'same' padding of one spatial axis: [before, after] (the extra one goes after). */
export function tfSamePads(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * A short layer name from a torch.onnx.export node name: '/layer1/layer1.0/conv1/Conv' is module
 * layer1.0.conv1 (each scope repeats its parent's prefix), '/GlobalAveragePool' has no module.
 */
function readableName(onnxName: string): string {
  const segments = onnxName.split('/').filter((s) => s !== '');
  if (segments.length < 2) return onnxName;
  const path: string[] = [];
  for (const segment of segments.slice(0, -1)) {
    if (path.length > 0 && segment.startsWith(`${path[path.length - 1]}.`)) path[path.length - 1] = segment;
    else path.push(segment);
  }
  return path.join('.');
}

class OnnxImporter {
  private readonly nodes: GraphNode[] = [];
  private readonly weights = new Map<string, Record<string, WeightArray>>();
  private readonly values = new Map<string, ValueState>();
  private readonly constants = new Map<string, OnnxTensor>();
  private readonly consumerCount = new Map<string, number>();
  private readonly usedNames = new Set<string>();
  /** Sigmoid outputs whose only use is x * sigmoid(x): they become one swish activation. */
  private readonly swishSigmoids = new Map<string, string>();
  /** Pooled vectors reshaped to [1, 1, C] maps, made once per vector. */
  private readonly pooledAsMap = new Map<string, string>();

  constructor(private readonly model: OnnxModel) {
    for (const [name, tensor] of model.initializers) this.constants.set(name, tensor);
    for (const node of model.nodes) for (const input of node.inputs) this.consumerCount.set(input, (this.consumerCount.get(input) ?? 0) + 1);
    for (const output of model.outputs) this.consumerCount.set(output.name, (this.consumerCount.get(output.name) ?? 0) + 1);
  }

  private fail(node: OnnxNode, reason: string): never {
    throw new PasInputError(`ONNX node '${node.name}' (${node.opType}): ${reason}`, this.model.file);
  }

  private layerName(base: string): string {
    let name = readableName(base).replace(/^\/+/, '').replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'layer';
    if (/^[0-9]/.test(name)) name = `l_${name}`;
    let unique = name;
    for (let k = 2; this.usedNames.has(unique); k++) unique = `${name}_${k}`;
    this.usedNames.add(unique);
    return unique;
  }

  private addLayer(base: string, className: string, config: Record<string, unknown>, inputs: string[], weights?: Record<string, WeightArray>): string {
    const name = this.layerName(base);
    this.nodes.push({ id: name, layerName: name, className, config: { name, trainable: true, ...config }, inputs, inputShapes: [], outputShape: [] });
    if (weights) this.weights.set(name, weights);
    return name;
  }

  private attr<T extends OnnxAttribute>(node: OnnxNode, name: string, fallback: T): T {
    return (node.attributes.has(name) ? node.attributes.get(name) : fallback) as T;
  }

  private constant(node: OnnxNode, name: string, what: string): OnnxTensor {
    const tensor = this.constants.get(name);
    if (!tensor) this.fail(node, `${what} '${name}' must be a constant (an initializer); PaS converts models with fixed weights`);
    return tensor;
  }

  private optionalConstant(node: OnnxNode, index: number, what: string): OnnxTensor | undefined {
    const name = node.inputs[index];
    return name ? this.constant(node, name, what) : undefined;
  }

  private value(node: OnnxNode, name: string): ValueState {
    const state = this.anyValue(node, name);
    if (state.view) this.fail(node, `input '${name}' is a 5-D view of the channels; PaS converts it only as a channel shuffle (Reshape - Transpose - Reshape)`);
    return state;
  }

  /** The state of an input, a 5-D channel view included (for Transpose and Reshape). */
  private anyValue(node: OnnxNode, name: string): ValueState {
    const state = this.values.get(name);
    if (!state) {
      if (this.constants.has(name)) this.fail(node, `input '${name}' is a constant; PaS converts operators on activations only`);
      this.fail(node, `input '${name}' is computed by an operator PaS did not convert`);
    }
    return state;
  }

  /** The input as a feature map; a pooled [C, 1, 1] vector is reshaped to a [1, 1, C] map. */
  private mapInput(node: OnnxNode, name: string): ValueState {
    const state = this.value(node, name);
    if (state.kind === 'map') return state;
    if (state.pooled) {
      let id = this.pooledAsMap.get(state.id);
      if (!id) {
        id = this.addLayer(`${state.id}_as_map`, 'Reshape', { target_shape: [1, 1, state.shape[0]] }, [state.id]);
        this.pooledAsMap.set(state.id, id);
      }
      return { kind: 'map', id, shape: [state.shape[0], 1, 1], nonNegative: state.nonNegative };
    }
    this.fail(node, `input '${name}' is a flat vector, but this operator needs a feature map [N, C, H, W]`);
  }

  private setOutput(node: OnnxNode, state: ValueState): void {
    this.values.set(node.outputs[0], state);
  }

  private floats(tensor: OnnxTensor): Float32Array {
    return tensor.values instanceof Float32Array ? tensor.values : Float32Array.from(tensor.values);
  }

  /** Padding of a conv or pooling window: Keras 'valid'/'same', plus explicit pads when neither matches. */
  private spatialPadding(
    node: OnnxNode,
    input: ValueState,
    kernel: number[],
    strides: number[],
    dilations: number[],
  ): { padding: 'valid' | 'same'; explicit?: [[number, number], [number, number]] } {
    const [, h, w] = input.shape;
    const autoPad = this.attr<string>(node, 'auto_pad', 'NOTSET');
    let pads: number[];
    if (autoPad === 'VALID') pads = [0, 0, 0, 0];
    else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const ph = tfSamePads(h, kernel[0], strides[0], dilations[0]);
      const pw = tfSamePads(w, kernel[1], strides[1], dilations[1]);
      if (autoPad === 'SAME_LOWER') {
        ph.reverse();
        pw.reverse();
      }
      pads = [ph[0], pw[0], ph[1], pw[1]];
    } else pads = this.attr<number[]>(node, 'pads', [0, 0, 0, 0]);
    if (pads.length !== 4 || pads.some((p) => p < 0)) this.fail(node, `pads [${pads.join(', ')}] are not 2-D non-negative pads`);
    if (pads.every((p) => p === 0)) return { padding: 'valid' };
    const sameH = tfSamePads(h, kernel[0], strides[0], dilations[0]);
    const sameW = tfSamePads(w, kernel[1], strides[1], dilations[1]);
    if (pads[0] === sameH[0] && pads[2] === sameH[1] && pads[1] === sameW[0] && pads[3] === sameW[1]) return { padding: 'same' };
    return { padding: 'valid', explicit: [[pads[0], pads[2]], [pads[1], pads[3]]] };
  }

  private zeroPad(node: OnnxNode, input: ValueState, pads: [[number, number], [number, number]]): ValueState {
    const id = this.addLayer(`${readableName(node.name)}_pad`, 'ZeroPadding2D', { padding: pads, data_format: 'channels_last' }, [input.id]);
    const [c, h, w] = input.shape;
    return { kind: 'map', id, shape: [c, h + pads[0][0] + pads[0][1], w + pads[1][0] + pads[1][1]], nonNegative: input.nonNegative };
  }

  private outputSize(size: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number, ceil = false): number {
    const span = size + padBefore + padAfter - ((kernel - 1) * dilation + 1);
    return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  }

  private windowOutputShape(input: ValueState, padding: 'valid' | 'same', kernel: number[], strides: number[], dilations: number[]): [number, number] {
    const [, h, w] = input.shape;
    if (padding === 'same') return [Math.ceil(h / strides[0]), Math.ceil(w / strides[1])];
    return [this.outputSize(h, kernel[0], strides[0], dilations[0], 0, 0), this.outputSize(w, kernel[1], strides[1], dilations[1], 0, 0)];
  }

  private convert(node: OnnxNode): void {
    if (node.domain && node.domain !== 'ai.onnx') this.fail(node, `operator domain '${node.domain}' is not the standard ONNX one; PaS converts standard CNN operators`);
    switch (node.opType) {
      case 'Constant': {
        const value = node.attributes.get('value');
        if (!value || typeof value !== 'object' || Array.isArray(value)) this.fail(node, 'only tensor-valued Constant nodes are supported');
        this.constants.set(node.outputs[0], value);
        return;
      }
      case 'Identity':
      case 'Dropout': {
        const source = node.inputs[0];
        if (this.constants.has(source)) this.constants.set(node.outputs[0], this.constants.get(source)!);
        else this.setOutput(node, this.value(node, source));
        return;
      }
      case 'Shape':
      case 'Gather':
      case 'Unsqueeze':
        return this.foldShapeArithmetic(node);
      case 'Div':
      case 'Sub':
      case 'Cast':
        // Integer arithmetic on shapes (channel_shuffle's num_channels // groups).
        if (node.inputs.every((name) => this.constants.has(name))) return this.foldShapeArithmetic(node);
        if (node.opType !== 'Cast') return this.convertNormalization(node);
        this.fail(node, `operator ${node.opType} on activations is not supported by PaS's ONNX import`);
        break;
      case 'Transpose':
        return this.convertTranspose(node);
      case 'Split':
        return this.convertSplit(node);
      case 'Slice':
        return this.convertSlice(node);
      case 'Conv':
        return this.convertConv(node);
      case 'ConvTranspose':
        return this.convertConvTranspose(node);
      case 'BatchNormalization':
        return this.convertBatchNorm(node);
      case 'Relu':
        return this.activationLayer(node, 'ReLU', {}, true);
      case 'Clip':
        return this.convertClip(node);
      case 'LeakyRelu':
        return this.activationLayer(node, 'LeakyReLU', { alpha: this.attr<number>(node, 'alpha', 0.01) }, false);
      case 'PRelu':
        return this.convertPRelu(node);
      case 'Sigmoid':
        if (this.swishSigmoids.has(node.outputs[0])) return; // folded into the Mul that follows
        return this.activationLayer(node, 'Activation', { activation: 'sigmoid' }, true);
      case 'Tanh':
        return this.activationLayer(node, 'Activation', { activation: 'tanh' }, false);
      case 'Softmax':
        return this.activationLayer(node, 'Activation', { activation: 'softmax' }, true);
      case 'HardSigmoid':
        return this.setOutput(node, this.hardSigmoid(node, this.value(node, node.inputs[0]), this.attr<number>(node, 'alpha', 0.2), this.attr<number>(node, 'beta', 0.5)));
      case 'HardSwish': {
        const x = this.value(node, node.inputs[0]);
        const gate = this.hardSigmoid(node, x, 1 / 6, 0.5);
        const id = this.addLayer(node.name, 'Multiply', {}, [x.id, gate.id]);
        return this.setOutput(node, { ...x, id, nonNegative: false });
      }
      case 'Add':
      case 'Sum':
        if (node.inputs.every((name) => this.constants.has(name))) return this.foldShapeArithmetic(node);
        return this.convertAdd(node);
      case 'Mul':
        if (node.inputs.every((name) => this.constants.has(name))) return this.foldShapeArithmetic(node);
        return this.convertMul(node);
      case 'Concat':
        if (node.inputs.every((name) => this.constants.has(name))) return this.foldShapeArithmetic(node);
        return this.convertConcat(node);
      case 'MaxPool':
      case 'AveragePool':
        return this.convertPool(node);
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
        return this.globalPool(node, node.opType === 'GlobalAveragePool' ? 'average' : 'max', true);
      case 'ReduceMean':
      case 'ReduceMax':
        return this.convertSpatialReduce(node);
      case 'Flatten':
        return this.convertFlatten(node, this.attr<number>(node, 'axis', 1));
      case 'Reshape':
        return this.convertReshape(node);
      case 'Squeeze':
        return this.convertSqueeze(node);
      case 'Gemm':
      case 'MatMul':
        return this.convertDense(node);
      case 'Pad':
        return this.convertPad(node);
      case 'Resize':
      case 'Upsample':
        return this.convertResize(node);
      default:
        this.fail(node, `operator ${node.opType} is not supported by PaS's ONNX import`);
    }
  }

  /**
   * `x.view(x.size(0), -1)` exports as Shape -> Gather -> Unsqueeze -> Concat -> Reshape: these
   * are evaluated here on the static shapes, with BATCH_DIM standing for the symbolic batch size.
   */
  private foldShapeArithmetic(node: OnnxNode): void {
    const ints = (name: string, what: string) => Array.from(this.constant(node, name, what).values, Number);
    const result = (values: number[], dims: number[]): void => void this.constants.set(node.outputs[0], { name: node.outputs[0], dims, values, isInteger: true });
    switch (node.opType) {
      case 'Shape': {
        const x = this.value(node, node.inputs[0]);
        const shape = [BATCH_DIM, ...(x.pooled ? [x.shape[0], 1, 1] : x.shape)];
        return result(shape, [shape.length]);
      }
      case 'Gather': {
        const data = this.constant(node, node.inputs[0], 'data');
        const indices = this.constant(node, node.inputs[1], 'indices');
        if (this.attr<number>(node, 'axis', 0) !== 0 || data.dims.length !== 1) this.fail(node, 'only gathering from a shape vector is supported');
        const values = Array.from(indices.values, (i) => Number(data.values[Number(i) < 0 ? data.values.length + Number(i) : Number(i)]));
        return result(values, indices.dims);
      }
      case 'Cast': {
        const data = this.constant(node, node.inputs[0], 'input');
        return result(Array.from(data.values, Number), data.dims);
      }
      case 'Div':
      case 'Mul':
      case 'Add':
      case 'Sum':
      case 'Sub': {
        const [a, b] = node.inputs.map((name) => this.constant(node, name, 'input'));
        if (!b || a.values.length !== b.values.length && b.values.length !== 1) this.fail(node, 'shape arithmetic on vectors of different lengths');
        const values = Array.from(a.values, (v, i) => {
          const x = Number(v);
          const y = Number(b.values[b.values.length === 1 ? 0 : i]);
          // The symbolic batch size cannot take part: a model whose shapes depend on it is refused.
          if (x === BATCH_DIM || y === BATCH_DIM) this.fail(node, 'shape arithmetic on the batch size');
          if (node.opType === 'Div') {
            if (y === 0) this.fail(node, 'division by zero in shape arithmetic');
            return Math.trunc(x / y); // ONNX integer Div truncates
          }
          return node.opType === 'Mul' ? x * y : node.opType === 'Sub' ? x - y : x + y;
        });
        return result(values, a.dims);
      }
      case 'Unsqueeze': {
        const data = this.constant(node, node.inputs[0], 'data');
        const axes = node.inputs[1] ? ints(node.inputs[1], 'axes') : this.attr<number[]>(node, 'axes', []);
        const dims = data.dims.slice();
        for (const axis of [...axes].sort((a, b) => a - b)) dims.splice(axis < 0 ? dims.length + axis + 1 : axis, 0, 1);
        return result(Array.from(data.values, Number), dims);
      }
      default: {
        const values = node.inputs.flatMap((name) => ints(name, 'input'));
        return result(values, [values.length]);
      }
    }
  }

  private activationLayer(node: OnnxNode, className: string, config: Record<string, unknown>, nonNegative: boolean): void {
    const x = this.value(node, node.inputs[0]);
    const id = this.addLayer(node.name, className, config, [x.id]);
    this.setOutput(node, { ...x, id, nonNegative });
  }

  /** clip(alpha * x + beta, 0, 1) with stock layers: Keras' own hard_sigmoid is fixed at 0.2x + 0.5. */
  private hardSigmoid(node: OnnxNode, x: ValueState, alpha: number, beta: number): ValueState {
    const scaled = this.addLayer(`${readableName(node.name)}_affine`, 'Rescaling', { scale: alpha, offset: beta }, [x.id]);
    const id = this.addLayer(`${readableName(node.name)}_clip`, 'ReLU', { max_value: 1 }, [scaled]);
    return { ...x, id, nonNegative: true };
  }

  private convertConv(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const weight = this.constant(node, node.inputs[1], 'weight');
    const bias = this.optionalConstant(node, 2, 'bias');
    if (weight.dims.length !== 4) this.fail(node, `weight has shape [${weight.dims.join(', ')}]; PaS converts 2-D convolutions`);
    const [outChannels, inPerGroup, kh, kw] = weight.dims;
    const inChannels = x.shape[0];
    const group = this.attr<number>(node, 'group', 1);
    const strides = this.attr<number[]>(node, 'strides', [1, 1]);
    const dilations = this.attr<number[]>(node, 'dilations', [1, 1]);
    const depthwise = group > 1 && group === inChannels && inPerGroup === 1 && outChannels % inChannels === 0;
    if (inPerGroup * group !== inChannels) this.fail(node, `weight expects ${inPerGroup * group} input channels, the input has ${inChannels}`);
    if (outChannels % group !== 0) this.fail(node, `${outChannels} output channels do not split into ${group} groups`);
    let input = x;
    const { padding, explicit } = this.spatialPadding(node, x, [kh, kw], strides, dilations);
    if (explicit) input = this.zeroPad(node, x, explicit);
    const common = {
      kernel_size: [kh, kw],
      strides,
      padding,
      data_format: 'channels_last',
      dilation_rate: dilations,
      activation: 'linear',
      use_bias: bias !== undefined,
    };
    const weights: Record<string, WeightArray> = {};
    let id: string;
    if (depthwise) {
      // ONNX [C*m, 1, kh, kw] (output channel c*m + j) -> Keras [kh, kw, C, m].
      const multiplier = outChannels / inChannels;
      weights.depthwise_kernel = transposeArray(this.floats(weight), [inChannels, multiplier, kh, kw], [2, 3, 0, 1]);
      if (bias) weights.bias = { shape: [outChannels], values: this.floats(bias) };
      id = this.addLayer(node.name, 'DepthwiseConv2D', { ...common, depth_multiplier: multiplier }, [input.id], weights);
    } else {
      // ONNX [co, ci/g, kh, kw] -> Keras [kh, kw, ci/g, co]; with groups, group k owns outputs k*co/g.. in both.
      weights.kernel = transposeArray(this.floats(weight), weight.dims, [2, 3, 1, 0]);
      if (bias) weights.bias = { shape: [outChannels], values: this.floats(bias) };
      if (group > 1) id = this.addLayer(node.name, 'GroupedConv2D', { ...common, filters: outChannels, groups: group }, [input.id], weights);
      else id = this.addLayer(node.name, 'Conv2D', { ...common, filters: outChannels }, [input.id], weights);
    }
    const [oh, ow] = this.windowOutputShape(input, padding, [kh, kw], strides, dilations);
    this.setOutput(node, { kind: 'map', id, shape: [outChannels, oh, ow], nonNegative: false });
  }

  private convertConvTranspose(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const weight = this.constant(node, node.inputs[1], 'weight');
    const bias = this.optionalConstant(node, 2, 'bias');
    if (weight.dims.length !== 4) this.fail(node, `weight has shape [${weight.dims.join(', ')}]; PaS converts 2-D transposed convolutions`);
    const [inChannels, outChannels, kh, kw] = weight.dims;
    if (this.attr<number>(node, 'group', 1) !== 1) this.fail(node, 'grouped transposed convolutions are not supported');
    if (this.attr<number[]>(node, 'dilations', [1, 1]).some((d) => d !== 1)) this.fail(node, 'dilated transposed convolutions are not supported');
    if (node.attributes.has('output_shape') || this.attr<string>(node, 'auto_pad', 'NOTSET') !== 'NOTSET') this.fail(node, 'output_shape / auto_pad are not supported; export with explicit pads');
    const strides = this.attr<number[]>(node, 'strides', [1, 1]);
    const pads = this.attr<number[]>(node, 'pads', [0, 0, 0, 0]);
    const outputPadding = this.attr<number[]>(node, 'output_padding', [0, 0]);
    if (kh < strides[0] || kw < strides[1]) this.fail(node, 'kernels smaller than the stride are not supported');
    // Keras 'valid' computes the full (in - 1) * s + k output; ONNX then removes pads and adds output_padding.
    const crop: [[number, number], [number, number]] = [
      [pads[0], pads[2] - outputPadding[0]],
      [pads[1], pads[3] - outputPadding[1]],
    ];
    if (crop.flat().some((c) => c < 0)) this.fail(node, 'output_padding larger than the end pad is not supported');
    const weights: Record<string, WeightArray> = { kernel: transposeArray(this.floats(weight), weight.dims, [2, 3, 1, 0]) };
    if (bias) weights.bias = { shape: [outChannels], values: this.floats(bias) };
    let id = this.addLayer(
      node.name,
      'Conv2DTranspose',
      { filters: outChannels, kernel_size: [kh, kw], strides, padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], activation: 'linear', use_bias: bias !== undefined },
      [x.id],
      weights,
    );
    if (inChannels !== x.shape[0]) this.fail(node, `weight expects ${inChannels} input channels, the input has ${x.shape[0]}`);
    let h = (x.shape[1] - 1) * strides[0] + kh;
    let w = (x.shape[2] - 1) * strides[1] + kw;
    if (crop.flat().some((c) => c > 0)) {
      id = this.addLayer(`${readableName(node.name)}_crop`, 'Cropping2D', { cropping: crop, data_format: 'channels_last' }, [id]);
      h -= crop[0][0] + crop[0][1];
      w -= crop[1][0] + crop[1][1];
    }
    this.setOutput(node, { kind: 'map', id, shape: [outChannels, h, w], nonNegative: false });
  }

  private convertBatchNorm(node: OnnxNode): void {
    const x = this.value(node, node.inputs[0]);
    const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) => this.constant(node, node.inputs[i], ['scale', 'bias', 'mean', 'variance'][i - 1]));
    const channels = x.shape[0];
    if ([scale, offset, mean, variance].some((t) => t.values.length !== channels)) this.fail(node, `parameters do not have the input's ${channels} channels`);
    if (x.kind === 'vector' && x.order) this.fail(node, 'batch normalization of flattened feature maps is not supported');
    const vec = (t: OnnxTensor): WeightArray => ({ shape: [channels], values: this.floats(t) });
    const id = this.addLayer(
      node.name,
      'BatchNormalization',
      { axis: -1, momentum: 0.99, epsilon: this.attr<number>(node, 'epsilon', 1e-5), center: true, scale: true },
      [x.id],
      { gamma: vec(scale), beta: vec(offset), moving_mean: vec(mean), moving_variance: vec(variance) },
    );
    this.setOutput(node, { ...x, id, nonNegative: false });
  }

  private scalarInputOrAttr(node: OnnxNode, index: number, attrName: string, fallback: number): number {
    const name = node.inputs[index];
    if (name) {
      const tensor = this.constant(node, name, attrName);
      if (tensor.values.length !== 1) this.fail(node, `${attrName} must be a scalar`);
      return Number(tensor.values[0]);
    }
    return this.attr<number>(node, attrName, fallback);
  }

  private convertClip(node: OnnxNode): void {
    const min = this.scalarInputOrAttr(node, 1, 'min', -Infinity);
    const max = this.scalarInputOrAttr(node, 2, 'max', Infinity);
    if (min !== 0) this.fail(node, `Clip(${min}, ${max}) is not a ReLU; PaS converts Clip with min 0 (ReLU6 and the like)`);
    this.activationLayer(node, 'ReLU', Number.isFinite(max) ? { max_value: max } : {}, true);
  }

  private convertPRelu(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const slope = this.constant(node, node.inputs[1], 'slope');
    const channels = x.shape[0];
    let alpha: Float32Array;
    if (slope.values.length === channels) alpha = this.floats(slope);
    else if (slope.values.length === 1) alpha = new Float32Array(channels).fill(Number(slope.values[0]));
    else this.fail(node, `slope of shape [${slope.dims.join(', ')}] is neither per-channel nor shared`);
    const id = this.addLayer(node.name, 'PReLU', { shared_axes: [1, 2] }, [x.id], { alpha: { shape: [1, 1, channels], values: alpha } });
    this.setOutput(node, { ...x, id, nonNegative: false });
  }

  /** Adds a per-channel constant into the bias of the Conv/Dense layer that computed `x`. */
  private foldConstantIntoBias(node: OnnxNode, input: string, constant: OnnxTensor): boolean {
    const x = this.values.get(input);
    if (!x || (this.consumerCount.get(input) ?? 0) !== 1) return false;
    const producer = this.nodes.find((n) => n.id === x.id);
    if (!producer || !['Conv2D', 'DepthwiseConv2D', 'Dense'].includes(producer.className)) return false;
    const channels = x.kind === 'map' ? x.shape[0] : x.shape[0];
    const values = this.floats(constant);
    if (values.length !== channels && values.length !== 1) return false;
    const record = this.weights.get(producer.layerName)!;
    const bias = record.bias ?? { shape: [channels], values: new Float32Array(channels) };
    for (let i = 0; i < channels; i++) bias.values[i] += values.length === 1 ? values[0] : values[x.order ? x.order[i] : i];
    record.bias = bias;
    producer.config.use_bias = true;
    this.setOutput(node, { ...x, nonNegative: false });
    return true;
  }

  private convertAdd(node: OnnxNode): void {
    const constantInputs = node.inputs.filter((name) => this.constants.has(name));
    if (constantInputs.length > 0) {
      const other = node.inputs.find((name) => !this.constants.has(name));
      if (node.inputs.length === 2 && other && this.foldConstantIntoBias(node, other, this.constants.get(constantInputs[0])!)) return;
      this.fail(node, 'adding a constant is supported only right after a Conv/Gemm/MatMul (it becomes its bias)');
    }
    this.mergeLayer(node, 'Add');
  }

  private convertMul(node: OnnxNode): void {
    const [a, b] = node.inputs;
    const swishOf = this.swishSigmoids.get(b) === a ? a : this.swishSigmoids.get(a) === b ? b : undefined;
    if (swishOf !== undefined) {
      const x = this.value(node, swishOf);
      const id = this.addLayer(node.name, 'Activation', { activation: 'swish' }, [x.id]);
      return this.setOutput(node, { ...x, id, nonNegative: false });
    }
    const constantName = node.inputs.find((name) => this.constants.has(name));
    if (constantName) {
      const constant = this.constants.get(constantName)!;
      const other = node.inputs.find((name) => name !== constantName);
      if (constant.values.length !== 1 || !other) this.fail(node, 'multiplying by a constant is supported for scalars only');
      const x = this.value(node, other);
      const id = this.addLayer(node.name, 'Rescaling', { scale: Number(constant.values[0]), offset: 0 }, [x.id]);
      return this.setOutput(node, { ...x, id, nonNegative: x.nonNegative && Number(constant.values[0]) >= 0 });
    }
    this.mergeLayer(node, 'Multiply');
  }

  /** Add / Multiply of activations: maps with maps (a pooled [C,1,1] vector broadcasts as a [1,1,C] map), or vectors. */
  private mergeLayer(node: OnnxNode, className: 'Add' | 'Multiply'): void {
    const states = node.inputs.map((name) => this.value(node, name));
    if (states.length === 1) return this.setOutput(node, states[0]);
    const anyMap = states.some((s) => s.kind === 'map');
    const inputs = anyMap ? node.inputs.map((name) => this.mapInput(node, name)) : states;
    if (!anyMap && inputs.some((s) => s.order !== inputs[0].order)) this.fail(node, 'inputs are flattened differently');
    const widest = inputs.reduce((best, s) => (product(s.shape) > product(best.shape) ? s : best), inputs[0]);
    const id = this.addLayer(node.name, className, {}, inputs.map((s) => s.id));
    const nonNegative = inputs.every((s) => s.nonNegative);
    this.setOutput(node, { ...widest, id, pooled: anyMap ? undefined : widest.pooled, nonNegative });
  }

  private convertConcat(node: OnnxNode): void {
    const states = node.inputs.map((name) => this.value(node, name));
    const axis = this.attr<number>(node, 'axis', 1);
    const rank = states[0].kind === 'map' || states[0].pooled ? 4 : 2;
    if (axis !== 1 && axis !== 1 - rank) this.fail(node, `concatenation along axis ${axis}; PaS converts concatenation of channels (axis 1)`);
    if (states.some((s) => s.kind !== states[0].kind || s.order)) this.fail(node, 'inputs of mixed kinds (feature maps and vectors) or flattened maps');
    // torch.cat of a one-element list (DenseNet's first layer) is the identity.
    if (states.length === 1) return this.setOutput(node, states[0]);
    const id = this.addLayer(node.name, 'Concatenate', { axis: -1 }, states.map((s) => s.id));
    const channels = states.reduce((sum, s) => sum + s.shape[0], 0);
    this.setOutput(node, { ...states[0], id, shape: [channels, ...states[0].shape.slice(1)], nonNegative: states.every((s) => s.nonNegative) });
  }

  private convertPool(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const kernel = this.attr<number[]>(node, 'kernel_shape', []);
    if (kernel.length !== 2) this.fail(node, `kernel_shape [${kernel.join(', ')}] is not 2-D`);
    const strides = this.attr<number[]>(node, 'strides', [1, 1]);
    const dilations = this.attr<number[]>(node, 'dilations', [1, 1]);
    if (dilations.some((d) => d !== 1)) this.fail(node, 'dilated pooling is not supported');
    const isMax = node.opType === 'MaxPool';
    const windows = this.spatialPadding(node, x, kernel, strides, dilations);
    const ceilWindows = this.attr<number>(node, 'ceil_mode', 0) === 1 ? this.ceilModeWindows(node, x, kernel, strides, windows, isMax) : windows;
    const { padding, explicit } = ceilWindows;
    // 'same' standing for ceil_mode's partial window: no pads of the node's own to count.
    const ceilSame = ceilWindows !== windows && padding === 'same';
    let input = x;
    if (explicit) {
      // Max pooling pads with -inf, average pooling (count_include_pad=0) ignores the pads: both
      // equal zero padding only in the cases checked here.
      if (isMax && !x.nonNegative) this.fail(node, 'asymmetric-to-TF padding of a max pool on values that may be negative');
      if (!isMax && this.attr<number>(node, 'count_include_pad', 0) !== 1) this.fail(node, 'padded average pooling that excludes the pads, with pads TF cannot express');
      input = this.zeroPad(node, x, explicit);
    } else if (padding === 'same' && !isMax && !ceilSame && this.attr<number>(node, 'count_include_pad', 0) === 1) {
      input = this.zeroPad(node, x, [tfSamePads(x.shape[1], kernel[0], strides[0]), tfSamePads(x.shape[2], kernel[1], strides[1])]);
    }
    const kerasPadding = input === x ? padding : 'valid';
    const id = this.addLayer(node.name, isMax ? 'MaxPooling2D' : 'AveragePooling2D', { pool_size: kernel, strides, padding: kerasPadding, data_format: 'channels_last' }, [input.id]);
    const [oh, ow] = this.windowOutputShape(input, kerasPadding, kernel, strides, [1, 1]);
    this.setOutput(node, { kind: 'map', id, shape: [x.shape[0], oh, ow], nonNegative: x.nonNegative });
  }

  /** Global pooling of a map; `keepDims`: ONNX [C, 1, 1] (a pooled vector), else [C]. */
  private globalPool(node: OnnxNode, kind: 'average' | 'max', keepDims: boolean): void {
    const x = this.mapInput(node, node.inputs[0]);
    const className = kind === 'average' ? 'GlobalAveragePooling2D' : 'GlobalMaxPooling2D';
    const id = this.addLayer(node.name, className, { data_format: 'channels_last' }, [x.id]);
    this.setOutput(node, { kind: 'vector', id, shape: [x.shape[0]], pooled: keepDims, nonNegative: x.nonNegative });
  }

  /**
   * `x.mean([2, 3])` and `torch.amax(x, (2, 3))`, the way many PyTorch models (MnasNet, hand-written
   * squeeze-excitation blocks) write global pooling, export as ReduceMean / ReduceMax over the
   * spatial axes: the same layers as GlobalAveragePool / GlobalMaxPool. Axes are an attribute up
   * to opset 17 and an input from opset 18.
   */
  private convertSpatialReduce(node: OnnxNode): void {
    const axesInput = node.inputs[1];
    const axes = axesInput ? Array.from(this.constant(node, axesInput, 'axes').values, Number) : this.attr<number[]>(node, 'axes', []);
    const spatial = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
    const x = this.value(node, node.inputs[0]);
    if (x.kind !== 'map' || spatial.length !== 2 || spatial[0] !== 2 || spatial[1] !== 3) {
      const over = axes.length > 0 ? `axes [${axes.join(', ')}]` : 'all axes';
      this.fail(node, `${node.opType} over ${over} of a ${x.kind === 'map' ? 'feature map' : 'vector'}; PaS converts the mean or max over the spatial axes [2, 3] of a feature map (global pooling)`);
    }
    this.globalPool(node, node.opType === 'ReduceMean' ? 'average' : 'max', this.attr<number>(node, 'keepdims', 1) === 1);
  }

  /**
   * Pooling with ceil_mode=1 (torchvision's GoogLeNet and SqueezeNet use it): the output keeps a
   * last, partial window wherever the floor would drop it (PyTorch's rule: unless that window would
   * start in the end padding). That is the same pooling with more padding at the end, which the
   * window ignores (max: -inf; average: PyTorch's divisor never counts the overhang). TF's 'same'
   * pads exactly so where its split of the padding agrees; max pooling of values >= 0 can also take
   * explicit zero padding; anything else is refused.
   */
  private ceilModeWindows(
    node: OnnxNode,
    x: ValueState,
    kernel: number[],
    strides: number[],
    windows: { padding: 'valid' | 'same'; explicit?: [[number, number], [number, number]] },
    isMax: boolean,
  ): { padding: 'valid' | 'same'; explicit?: [[number, number], [number, number]] } {
    const given: [number, number][] = windows.explicit ?? (windows.padding === 'same' ? [0, 1].map((i) => tfSamePads(x.shape[1 + i], kernel[i], strides[i])) : [[0, 0], [0, 0]]);
    const pads = [0, 1].map((i) => {
      const size = x.shape[1 + i];
      const [before, after] = given[i];
      let out = this.outputSize(size, kernel[i], strides[i], 1, before, after, true);
      if ((out - 1) * strides[i] >= size + before) out--;
      return [before, Math.max(after, (out - 1) * strides[i] + kernel[i] - size - before)] as [number, number];
    });
    if (pads.every(([b, a], i) => b === given[i][0] && a === given[i][1])) return windows; // ceil changes nothing here
    const same = [0, 1].map((i) => tfSamePads(x.shape[1 + i], kernel[i], strides[i]));
    const countsPads = !isMax && this.attr<number>(node, 'count_include_pad', 0) === 1 && given.some(([b, a]) => b > 0 || a > 0);
    if (pads.every(([b, a], i) => b === same[i][0] && a === same[i][1]) && !countsPads) return { padding: 'same' };
    if (isMax && x.nonNegative) return { padding: 'valid', explicit: [pads[0], pads[1]] };
    this.fail(node, `ceil_mode=1 adds a partial window that TF pooling cannot express here (padding [${pads.map((p) => p.join(', ')).join('; ')}] of a ${isMax ? 'max pool of values that may be negative' : 'average pool'}); export with ceil_mode=False`);
  }

  /**
   * `(x - mean) / std` with constant per-channel (or scalar) mean and std, as PyTorch models that
   * normalize their own input write it (and as PaS exports Keras' Normalization layer): one
   * KerasNormalization layer per operator, with the statistics in its config (variance = std^2).
   */
  private convertNormalization(node: OnnxNode): void {
    const [input, operand] = node.inputs;
    const x = this.mapInput(node, input);
    const constant = operand !== undefined ? this.constants.get(operand) : undefined;
    const channels = x.shape[0];
    const perChannel = constant && (constant.values.length === 1 || (constant.values.length === channels && constant.dims.filter((d) => d !== 1).length <= 1 && constant.dims.length <= 4 && (constant.dims.length < 3 || constant.dims[constant.dims.length - 3] === channels)));
    if (!constant || !perChannel) {
      this.fail(node, `${node.opType} of an activation by something other than a constant per-channel or scalar value; PaS converts (x - mean) / std input normalization`);
    }
    const values = Array.from({ length: channels }, (_, c) => Number(constant.values[constant.values.length === 1 ? 0 : c]));
    if (node.opType === 'Div' && values.some((v) => !(v > 0))) this.fail(node, 'division by a value that is not positive');
    const config = node.opType === 'Sub' ? { mean: values, variance: values.map(() => 1) } : { mean: values.map(() => 0), variance: values.map((v) => v * v) };
    const id = this.addLayer(node.name, 'Normalization', { axis: -1, ...config }, [x.id]);
    this.setOutput(node, { ...x, id, nonNegative: false });
  }

  /** channel_shuffle's transpose(1, 2) of the 5-D view; no other Transpose is converted. */
  private convertTranspose(node: OnnxNode): void {
    const x = this.anyValue(node, node.inputs[0]);
    const perm = this.attr<number[]>(node, 'perm', []);
    if (!x.view || perm.join(',') !== '0,2,1,3,4') {
      this.fail(node, `transpose with perm [${perm.join(', ')}]; PaS converts only a channel shuffle's transpose of [N, groups, C/groups, H, W] (perm [0, 2, 1, 3, 4])`);
    }
    this.setOutput(node, { ...x, view: { ...x.view, transposed: !x.view.transposed } });
  }

  /** channel_shuffle's last view, back to [C, H, W]: a ChannelShuffle layer (none if the transposes cancelled). */
  private convertShuffleEnd(node: OnnxNode, x: ValueState, dims: number[]): void {
    const [c, h, w] = x.shape;
    if (dims.length !== 3 || dims[0] !== c || dims[1] !== h || dims[2] !== w) {
      this.fail(node, `reshape of a 5-D channel view to [N, ${dims.join(', ')}]; PaS converts only the channel shuffle's reshape back to [N, ${c}, ${h}, ${w}]`);
    }
    const { view, ...map } = x;
    if (!view!.transposed) return this.setOutput(node, map);
    const id = this.addLayer(node.name, 'ChannelShuffle', { groups: view!.groups }, [x.id]);
    this.setOutput(node, { ...map, id });
  }

  /** `x.chunk(k, dim=1)` / `torch.split` along the channels: one ChannelSlice layer per output. */
  private convertSplit(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const axis = this.attr<number>(node, 'axis', 0);
    if (axis !== 1 && axis !== -3) this.fail(node, `split along axis ${axis}; PaS converts splits of the channels (axis 1)`);
    const channels = x.shape[0];
    let sizes: number[];
    if (node.inputs[1]) sizes = Array.from(this.constant(node, node.inputs[1], 'split').values, Number);
    else if (node.attributes.has('split')) sizes = this.attr<number[]>(node, 'split', []);
    else {
      if (channels % node.outputs.length !== 0) this.fail(node, `${channels} channels do not split into ${node.outputs.length} equal parts`);
      sizes = node.outputs.map(() => channels / node.outputs.length);
    }
    if (sizes.length !== node.outputs.length || sizes.reduce((a, b) => a + b, 0) !== channels || sizes.some((n) => n <= 0)) {
      this.fail(node, `split sizes [${sizes.join(', ')}] do not cover the ${channels} channels in ${node.outputs.length} parts`);
    }
    let begin = 0;
    node.outputs.forEach((output, i) => {
      const id = this.addLayer(`${node.name}_${i}`, 'ChannelSlice', { begin, size: sizes[i] }, [x.id]);
      this.values.set(output, { kind: 'map', id, shape: [sizes[i], x.shape[1], x.shape[2]], nonNegative: x.nonNegative });
      begin += sizes[i];
    });
  }

  /** `x[:, a:b]` (torch.chunk exports as two of these): a ChannelSlice layer. Only channel slices with step 1. */
  private convertSlice(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const ints = (index: number, attribute: string): number[] | undefined =>
      node.inputs[index] ? Array.from(this.constant(node, node.inputs[index], attribute).values, Number) : node.attributes.has(attribute) ? this.attr<number[]>(node, attribute, []) : undefined;
    const starts = ints(1, 'starts') ?? [];
    const ends = ints(2, 'ends') ?? [];
    const axes = ints(3, 'axes') ?? starts.map((_, i) => i);
    const steps = ints(4, 'steps') ?? starts.map(() => 1);
    const channels = x.shape[0];
    if (axes.length !== 1 || (axes[0] !== 1 && axes[0] !== -3) || steps[0] !== 1) {
      this.fail(node, `slice along axes [${axes.join(', ')}] with steps [${steps.join(', ')}]; PaS converts slices of the channels (axis 1, step 1)`);
    }
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + channels : v, 0), channels);
    const begin = clamp(starts[0]);
    const end = clamp(ends[0]);
    if (end <= begin) this.fail(node, `the slice ${starts[0]}:${ends[0]} of ${channels} channels is empty`);
    const id = this.addLayer(node.name, 'ChannelSlice', { begin, size: end - begin }, [x.id]);
    this.setOutput(node, { kind: 'map', id, shape: [end - begin, x.shape[1], x.shape[2]], nonNegative: x.nonNegative });
  }

  /** NCHW flatten of a map: a Keras Flatten (h, w, c order) plus the order the classifier's rows need. */
  private flattenMap(node: OnnxNode, x: ValueState): ValueState {
    const [c, h, w] = x.shape;
    const id = this.addLayer(node.name, 'Flatten', { data_format: 'channels_last' }, [x.id]);
    let order: number[] | undefined;
    if (h * w > 1) {
      order = new Array<number>(c * h * w);
      for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) order[(y * w + xx) * c + ch] = ch * h * w + y * w + xx;
    }
    return { kind: 'vector', id, shape: [c * h * w], order, nonNegative: x.nonNegative };
  }

  private convertFlatten(node: OnnxNode, axis: number): void {
    if (axis !== 1) this.fail(node, `flatten from axis ${axis}; PaS converts Flatten(axis=1)`);
    const x = this.value(node, node.inputs[0]);
    if (x.kind === 'vector') return this.setOutput(node, { ...x, shape: [product(x.shape)], pooled: false });
    this.setOutput(node, this.flattenMap(node, x));
  }

  private convertReshape(node: OnnxNode): void {
    const x = this.anyValue(node, node.inputs[0]);
    const target = Array.from(this.constant(node, node.inputs[1], 'shape').values, Number);
    const inShape = onnxShapeOf(x);
    const features = product(inShape);
    // Resolve 0 (copy) and -1 (infer) against the ONNX shape [N, ...inShape]; N stays symbolic.
    const full = [BATCH_DIM, ...inShape];
    const resolved = target.map((d, i) => (d === 0 ? full[i] : d));
    if (resolved[0] !== BATCH_DIM && resolved[0] !== -1) this.fail(node, 'reshape changes the batch dimension');
    if (resolved.slice(1).includes(BATCH_DIM)) this.fail(node, 'reshape moves the batch dimension');
    const rest = resolved.slice(1);
    if (rest.filter((d) => d === -1).length > 1 || (resolved[0] === -1 && rest.includes(-1))) this.fail(node, 'ambiguous target shape');
    const known = product(rest.filter((d) => d !== -1));
    const inferred = rest.map((d) => (d === -1 ? features / known : d));
    if (product(inferred) !== features || inferred.some((d) => !Number.isInteger(d))) this.fail(node, `cannot reshape [${inShape.join(', ')}] to [${target.join(', ')}]`);
    if (x.view) return this.convertShuffleEnd(node, x, inferred);
    if (inferred.length === 1) {
      if (x.kind === 'vector') return this.setOutput(node, { ...x, shape: inferred, pooled: false });
      return this.setOutput(node, this.flattenMap(node, x));
    }
    if (inferred.length === 3 && inferred[1] === 1 && inferred[2] === 1 && x.kind === 'vector' && !x.order) {
      return this.setOutput(node, { ...x, shape: [inferred[0]], pooled: true });
    }
    if (inferred.length === 3 && x.kind === 'map' && inferred.every((d, i) => d === inShape[i])) return this.setOutput(node, x);
    // channel_shuffle's first view: [C, H, W] -> [groups, C / groups, H, W].
    if (inferred.length === 4 && x.kind === 'map' && inferred[0] * inferred[1] === inShape[0] && inferred[2] === inShape[1] && inferred[3] === inShape[2]) {
      return this.setOutput(node, { ...x, view: { groups: inferred[0], transposed: false } });
    }
    this.fail(node, `reshape of [${inShape.join(', ')}] to [${target.join(', ')}]; PaS converts flattening and [C] <-> [C, 1, 1] reshapes`);
  }

  private convertSqueeze(node: OnnxNode): void {
    const x = this.value(node, node.inputs[0]);
    if (x.kind === 'vector' && x.pooled) return this.setOutput(node, { ...x, pooled: false });
    if (x.kind === 'map' && x.shape[1] === 1 && x.shape[2] === 1) return this.setOutput(node, this.flattenMap(node, x));
    this.fail(node, 'squeeze of a feature map larger than 1x1');
  }

  private convertDense(node: OnnxNode): void {
    const x = this.value(node, node.inputs[0]);
    if (x.kind !== 'vector') this.fail(node, 'matrix product of a feature map; PaS converts classifiers on flattened or pooled features');
    const weight = this.constant(node, node.inputs[1], 'weight');
    if (weight.dims.length !== 2) this.fail(node, `weight has shape [${weight.dims.join(', ')}]`);
    const isGemm = node.opType === 'Gemm';
    if (isGemm && this.attr<number>(node, 'transA', 0) !== 0) this.fail(node, 'transA=1 is not supported');
    const transB = isGemm && this.attr<number>(node, 'transB', 0) === 1;
    const alpha = isGemm ? this.attr<number>(node, 'alpha', 1) : 1;
    const beta = isGemm ? this.attr<number>(node, 'beta', 1) : 1;
    const [inFeatures, outFeatures] = transB ? [weight.dims[1], weight.dims[0]] : weight.dims;
    if (inFeatures !== x.shape[0]) this.fail(node, `weight expects ${inFeatures} input features, the input has ${x.shape[0]}`);
    const w = this.floats(weight);
    const kernel = new Float32Array(inFeatures * outFeatures);
    for (let j = 0; j < inFeatures; j++) {
      const source = x.order ? x.order[j] : j;
      for (let o = 0; o < outFeatures; o++) kernel[j * outFeatures + o] = alpha * (transB ? w[o * inFeatures + source] : w[source * outFeatures + o]);
    }
    const weights: Record<string, WeightArray> = { kernel: { shape: [inFeatures, outFeatures], values: kernel } };
    const biasTensor = isGemm ? this.optionalConstant(node, 2, 'bias') : undefined;
    if (biasTensor) {
      const values = this.floats(biasTensor);
      if (values.length !== outFeatures && values.length !== 1) this.fail(node, `bias of shape [${biasTensor.dims.join(', ')}] does not broadcast to ${outFeatures} outputs`);
      weights.bias = { shape: [outFeatures], values: Float32Array.from({ length: outFeatures }, (_, o) => beta * values[values.length === 1 ? 0 : o]) };
    }
    const id = this.addLayer(node.name, 'Dense', { units: outFeatures, activation: 'linear', use_bias: biasTensor !== undefined }, [x.id], weights);
    this.setOutput(node, { kind: 'vector', id, shape: [outFeatures], nonNegative: false });
  }

  private convertPad(node: OnnxNode): void {
    const mode = this.attr<string>(node, 'mode', 'constant');
    if (mode !== 'constant') this.fail(node, `padding mode '${mode}'; PaS converts zero padding`);
    const pads = node.inputs[1] ? Array.from(this.constant(node, node.inputs[1], 'pads').values, Number) : this.attr<number[]>(node, 'pads', []);
    const value = node.inputs[2] ? Number(this.constant(node, node.inputs[2], 'constant_value').values[0] ?? 0) : this.attr<number>(node, 'value', 0);
    if (value !== 0) this.fail(node, `padding with ${value}; PaS converts zero padding`);
    const x = this.mapInput(node, node.inputs[0]);
    if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads.some((p) => p < 0)) this.fail(node, `pads [${pads.join(', ')}]; PaS converts non-negative padding of height and width`);
    if (pads.every((p) => p === 0)) return this.setOutput(node, x);
    this.setOutput(node, this.zeroPad(node, x, [[pads[2], pads[6]], [pads[3], pads[7]]]));
  }

  private convertResize(node: OnnxNode): void {
    const x = this.mapInput(node, node.inputs[0]);
    const mode = this.attr<string>(node, 'mode', 'nearest');
    if (mode !== 'nearest') this.fail(node, `resize mode '${mode}'; PaS converts nearest-neighbour upsampling by integer factors`);
    const transform = this.attr<string>(node, 'coordinate_transformation_mode', 'half_pixel');
    const nearest = this.attr<string>(node, 'nearest_mode', 'round_prefer_floor');
    // At an integer scale s, output i reads input floor(i / s) under both of these conventions.
    const floorLike = (transform === 'asymmetric' && nearest === 'floor') || (['half_pixel', 'pytorch_half_pixel'].includes(transform) && nearest === 'round_prefer_floor');
    if (!floorLike) this.fail(node, `coordinate_transformation_mode '${transform}' with nearest_mode '${nearest}' is not supported`);
    let scales: number[] | undefined;
    const scalesName = node.opType === 'Upsample' ? node.inputs[1] : node.inputs[2];
    if (scalesName) {
      const tensor = this.constant(node, scalesName, 'scales');
      if (tensor.values.length > 0) scales = Array.from(tensor.values, Number);
    }
    if (!scales && node.inputs[3]) {
      const sizes = Array.from(this.constant(node, node.inputs[3], 'sizes').values, Number);
      scales = [1, 1, sizes[2] / x.shape[1], sizes[3] / x.shape[2]];
    }
    if (!scales || scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1 || !Number.isInteger(scales[2]) || !Number.isInteger(scales[3]) || scales[2] < 1 || scales[3] < 1) {
      this.fail(node, `scales [${(scales ?? []).join(', ')}]; PaS converts integer upsampling of height and width`);
    }
    const id = this.addLayer(node.name, 'UpSampling2D', { size: [scales[2], scales[3]], interpolation: 'nearest', data_format: 'channels_last' }, [x.id]);
    this.setOutput(node, { ...x, id, shape: [x.shape[0], x.shape[1] * scales[2], x.shape[2] * scales[3]] });
  }

  /** Marks x * sigmoid(x) pairs, so that the Sigmoid and the Mul become one swish activation. */
  private findSwishPairs(): void {
    const producers = new Map<string, OnnxNode>();
    for (const node of this.model.nodes) for (const output of node.outputs) producers.set(output, node);
    for (const node of this.model.nodes) {
      if (node.opType !== 'Mul' || node.inputs.length !== 2) continue;
      for (const [a, b] of [node.inputs, [...node.inputs].reverse()]) {
        const sigmoid = producers.get(b);
        if (sigmoid?.opType === 'Sigmoid' && sigmoid.inputs[0] === a && this.consumerCount.get(b) === 1) this.swishSigmoids.set(b, a);
      }
    }
  }

  run(): ImportedOnnx {
    const { model } = this;
    if (model.inputs.length !== 1) throw new PasInputError(`the model has ${model.inputs.length} inputs; PaS needs one image input`, model.file);
    if (model.outputs.length !== 1) throw new PasInputError(`the model has ${model.outputs.length} outputs; PaS needs one classifier output`, model.file);
    const [input] = model.inputs;
    const shape = input.shape;
    if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number' || d < 1 || d > 16384)) {
      throw new PasInputError(`input '${input.name}' has shape [${(shape ?? []).join(', ')}]; PaS needs [batch, channels, height, width] with fixed channels, height and width`, model.file);
    }
    const [c, h, w] = shape.slice(1) as number[];
    const inputId = this.addLayer(input.name, 'InputLayer', { batch_input_shape: [null, h, w, c], dtype: 'float32', sparse: false }, []);
    this.values.set(input.name, { kind: 'map', id: inputId, shape: [c, h, w], nonNegative: false });
    this.findSwishPairs();
    for (const node of model.nodes) this.convert(node);
    const [output] = model.outputs;
    const result = this.values.get(output.name);
    if (!result) throw new PasInputError(`the output '${output.name}' is a constant or is not computed`, model.file);
    const outputId = result.id;
    const graph: ModelGraph = { name: this.layerName(model.graphName), nodes: this.nodes, inputIds: [inputId], outputIds: [outputId], weights: this.weights };
    return {
      graph,
      info: {
        file: model.file,
        inputName: input.name,
        outputName: output.name,
        inputBatchDim: shape[0],
        outputBatchDim: output.shape?.[0] ?? 'batch',
        opset: model.opset,
        producer: model.producer,
      },
    };
  }
}

/** Converts a read ONNX model to the engine's graph (no tfjs model is built). */
export function convertOnnxModel(model: OnnxModel): ImportedOnnx {
  return new OnnxImporter(model).run();
}

/**
 * Reads `file` and builds the equivalent tfjs Layers model.
 * @throws PasInputError naming the file for hostile or unreadable files and for operators PaS
 *   cannot convert (naming the operator and the node).
 */
export async function importOnnxModel(file: string): Promise<{ model: tf.LayersModel; info: OnnxSourceInfo }> {
  const { graph, info } = convertOnnxModel(readOnnxModel(file));
  try {
    return { model: await modelFromGraph(graph), info };
  } catch (error) {
    throw new PasInputError(`TF.js cannot build the converted model: ${error instanceof Error ? error.message : String(error)}`, file);
  }
}
