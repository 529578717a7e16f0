/**
 * The engine's model -> ONNX (opset 13, NCHW, dynamic batch), for deployed models: each Keras layer
 * becomes the ONNX operators that compute the same thing in NCHW, with weights moved back to ONNX
 * layouts. An imported model keeps its original input and output names and batch dimension.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { GraphNode, graphFromModel, ModelGraph, WeightArray } from '../graph/modelGraph';
import { tfSamePads, transposeArray, type OnnxSourceInfo } from './importOnnx';
import { ATTR_FLOAT, ATTR_FLOATS, ATTR_INT, ATTR_INTS, ATTR_STRING, modelProto, ONNX_FLOAT, ONNX_INT64 } from './schema';

/** Operator set of the written models: 13 runs in every onnxruntime since 1.6 and in other runtimes. */
export const EXPORT_OPSET = 13;
/** IR version matching opset 13. */
const EXPORT_IR_VERSION = 7;

type AttributeValue = number | number[] | string | { floats: number[] };

interface ProtoNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: Record<string, unknown>[];
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined || v === null ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

function attribute(name: string, value: AttributeValue): Record<string, unknown> {
  if (typeof value === 'string') return { name, type: ATTR_STRING, s: Buffer.from(value, 'utf8') };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: ATTR_INT, i: value } : { name, type: ATTR_FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: ATTR_INTS, ints: value };
  return { name, type: ATTR_FLOATS, floats: value.floats };
}

class OnnxWriter {
  readonly nodes: ProtoNode[] = [];
  readonly initializers: Record<string, unknown>[] = [];
  private readonly usedNames = new Set<string>();
  /** ONNX tensor name of each Keras node's output. */
  private readonly tensorOf = new Map<string, string>();

  constructor(
    private readonly graph: ModelGraph,
    private readonly inputName: string,
  ) {}

  private unique(base: string): string {
    let name = base;
    for (let k = 2; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  private fail(node: GraphNode, reason: string): never {
    throw new PasInputError(`layer '${node.layerName}' (${node.className}) cannot be written as ONNX: ${reason}`);
  }

  floatInit(base: string, dims: number[], values: Float32Array | number[]): string {
    const name = this.unique(base);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push({ name, dims, data_type: ONNX_FLOAT, raw_data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  int64Init(base: string, values: number[]): string {
    const name = this.unique(base);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], data_type: ONNX_INT64, raw_data: Buffer.from(data.buffer) });
    return name;
  }

  op(opType: string, inputs: string[], base: string, attributes: Record<string, AttributeValue> = {}): string {
    const output = this.unique(base);
    this.nodes.push({ name: output, op_type: opType, input: inputs, output: [output], attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)) });
    return output;
  }

  private weight(node: GraphNode, key: string): WeightArray {
    const weight = this.graph.weights.get(node.layerName)?.[key];
    if (!weight) this.fail(node, `its weight '${key}' is missing`);
    return weight;
  }

  private optionalWeight(node: GraphNode, key: string): WeightArray | undefined {
    return this.graph.weights.get(node.layerName)?.[key];
  }

  /** An activation by its Keras name, applied to `x`. */
  private activation(node: GraphNode, name: string, x: string, base: string): string {
    switch (String(name).toLowerCase()) {
      case 'linear':
        return x;
      case 'relu':
        return this.op('Relu', [x], base);
      case 'relu6':
        return this.op('Clip', [x, this.floatInit(`${base}_min`, [], [0]), this.floatInit(`${base}_max`, [], [6])], base);
      case 'sigmoid':
        return this.op('Sigmoid', [x], base);
      case 'tanh':
        return this.op('Tanh', [x], base);
      case 'elu':
        return this.op('Elu', [x], base);
      case 'softmax':
        return this.op('Softmax', [x], base, { axis: -1 });
      case 'hard_sigmoid':
      case 'hardsigmoid':
        return this.op('HardSigmoid', [x], base, { alpha: 0.2, beta: 0.5 });
      case 'swish':
      case 'silu':
        return this.op('Mul', [x, this.op('Sigmoid', [x], `${base}_sigmoid`)], base);
      default:
        this.fail(node, `activation '${name}' has no ONNX mapping here`);
    }
  }

  /** Explicit [top, left, bottom, right] pads of a Keras window op. */
  private pads(node: GraphNode, kernel: [number, number], strides: [number, number], dilations: [number, number] = [1, 1]): number[] {
    if (node.config.padding !== 'same') return [0, 0, 0, 0];
    const [h, w] = node.inputShapes[0];
    const [top, bottom] = tfSamePads(h, kernel[0], strides[0], dilations[0]);
    const [left, right] = tfSamePads(w, kernel[1], strides[1], dilations[1]);
    return [top, left, bottom, right];
  }

  private convertNode(node: GraphNode): string {
    const inputs = node.inputs.map((id) => this.tensorOf.get(id)!);
    const [x] = inputs;
    const base = node.layerName;
    const config = node.config;
    const rankOf = (shape: number[]) => shape.length;
    switch (node.className) {
      case 'InputLayer':
        return this.inputName;
      case 'Dropout':
        return x;
      case 'Conv2D':
      case 'GroupedConv2D':
      case 'DepthwiseConv2D': {
        const kernel = pair(config.kernel_size, 1);
        const strides = pair(config.strides, 1);
        const dilations = pair(config.dilation_rate, 1);
        let weightName: string;
        let group = 1;
        if (node.className === 'Conv2D' || node.className === 'GroupedConv2D') {
          const k = this.weight(node, 'kernel');
          group = node.className === 'GroupedConv2D' ? config.groups : 1;
          weightName = this.floatInit(`${base}.weight`, [k.shape[3], k.shape[2], k.shape[0], k.shape[1]], transposeArray(k.values, k.shape, [3, 2, 0, 1]).values);
        } else {
          const k = this.weight(node, 'depthwise_kernel');
          const [kh, kw, c, m] = k.shape;
          group = c;
          weightName = this.floatInit(`${base}.weight`, [c * m, 1, kh, kw], transposeArray(k.values, k.shape, [2, 3, 0, 1]).values);
        }
        const bias = config.use_bias ? this.optionalWeight(node, 'bias') : undefined;
        const convInputs = [x, weightName, ...(bias ? [this.floatInit(`${base}.bias`, bias.shape, bias.values)] : [])];
        const y = this.op('Conv', convInputs, base, { kernel_shape: kernel, strides, dilations, pads: this.pads(node, kernel, strides, dilations), group });
        return this.activation(node, config.activation ?? 'linear', y, `${base}_act`);
      }
      case 'Conv2DTranspose': {
        if (config.padding !== 'valid') this.fail(node, "only 'valid' padding is exported");
        const k = this.weight(node, 'kernel');
        const weightName = this.floatInit(`${base}.weight`, [k.shape[3], k.shape[2], k.shape[0], k.shape[1]], transposeArray(k.values, k.shape, [3, 2, 0, 1]).values);
        const bias = config.use_bias ? this.optionalWeight(node, 'bias') : undefined;
        const y = this.op('ConvTranspose', [x, weightName, ...(bias ? [this.floatInit(`${base}.bias`, bias.shape, bias.values)] : [])], base, {
          kernel_shape: pair(config.kernel_size, 1),
          strides: pair(config.strides, 1),
        });
        return this.activation(node, config.activation ?? 'linear', y, `${base}_act`);
      }
      case 'Dense': {
        if (rankOf(node.inputShapes[0]) !== 1) this.fail(node, 'a dense layer on a feature map');
        const k = this.weight(node, 'kernel');
        const bias = config.use_bias ? this.optionalWeight(node, 'bias') : undefined;
        const y = this.op('Gemm', [x, this.floatInit(`${base}.weight`, k.shape, k.values), ...(bias ? [this.floatInit(`${base}.bias`, bias.shape, bias.values)] : [])], base);
        return this.activation(node, config.activation ?? 'linear', y, `${base}_act`);
      }
      case 'BatchNormalization': {
        const channels = node.outputShape[node.outputShape.length - 1];
        const axis = config.axis;
        if (axis !== -1 && axis !== node.outputShape.length && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === node.outputShape.length))) {
          this.fail(node, `normalization over axis ${JSON.stringify(axis)}; only channels are exported`);
        }
        const ones = new Float32Array(channels).fill(1);
        const zeros = new Float32Array(channels);
        const gamma = config.scale === false ? ones : this.weight(node, 'gamma').values;
        const beta = config.center === false ? zeros : this.weight(node, 'beta').values;
        return this.op(
          'BatchNormalization',
          [
            x,
            this.floatInit(`${base}.weight`, [channels], gamma),
            this.floatInit(`${base}.bias`, [channels], beta),
            this.floatInit(`${base}.running_mean`, [channels], this.weight(node, 'moving_mean').values),
            this.floatInit(`${base}.running_var`, [channels], this.weight(node, 'moving_variance').values),
          ],
          base,
          { epsilon: Number(config.epsilon ?? 1e-3) },
        );
      }
      case 'ReLU': {
        if (config.negative_slope || config.threshold) this.fail(node, 'negative_slope and threshold are not exported');
        if (config.max_value === undefined || config.max_value === null) return this.op('Relu', [x], base);
        return this.op('Clip', [x, this.floatInit(`${base}_min`, [], [0]), this.floatInit(`${base}_max`, [], [Number(config.max_value)])], base);
      }
      case 'Activation':
        return this.activation(node, config.activation, x, base);
      case 'LeakyReLU':
        return this.op('LeakyRelu', [x], base, { alpha: Number(config.alpha ?? 0.3) });
      case 'PReLU': {
        const alpha = this.weight(node, 'alpha');
        if (alpha.shape.length === 3) return this.op('PRelu', [x, this.floatInit(`${base}.slope`, [alpha.shape[2], alpha.shape[0], alpha.shape[1]], transposeArray(alpha.values, alpha.shape, [2, 0, 1]).values)], base);
        return this.op('PRelu', [x, this.floatInit(`${base}.slope`, alpha.shape, alpha.values)], base);
      }
      case 'Add':
      case 'Multiply': {
        const opType = node.className === 'Add' ? 'Add' : 'Mul';
        let y = inputs[0];
        for (let i = 1; i < inputs.length; i++) y = this.op(opType, [y, inputs[i]], i === inputs.length - 1 ? base : `${base}_${i}`);
        return y;
      }
      case 'Concatenate': {
        const rank = node.outputShape.length;
        if (config.axis !== -1 && config.axis !== rank) this.fail(node, `concatenation along axis ${config.axis}; only channels are exported`);
        return this.op('Concat', inputs, base, { axis: 1 });
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const kernel = pair(config.pool_size, 2);
        const strides = pair(config.strides ?? config.pool_size, 2);
        const attributes: Record<string, AttributeValue> = { kernel_shape: kernel, strides, pads: this.pads(node, kernel, strides) };
        // TF's 'same' average excludes the padding, as count_include_pad=0 does.
        if (node.className === 'AveragePooling2D') attributes.count_include_pad = 0;
        return this.op(node.className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x], base, attributes);
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const pooled = this.op(node.className === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x], `${base}_pool`);
        return this.op('Flatten', [pooled], base, { axis: 1 });
      }
      case 'Flatten': {
        const inShape = node.inputShapes[0];
        if (rankOf(inShape) === 1) return x;
        // Keras flattens (h, w, c): go to NHWC first unless the map is 1x1.
        const source = rankOf(inShape) === 3 && inShape[0] * inShape[1] > 1 ? this.op('Transpose', [x], `${base}_nhwc`, { perm: [0, 2, 3, 1] }) : x;
        return this.op('Flatten', [source], base, { axis: 1 });
      }
      case 'Reshape':
        return this.reshape(node, x, base);
      case 'Normalization': {
        // (x - mean) / max(sqrt(variance), 1e-7) per channel (or the inverse), as KerasNormalization computes it.
        const c = node.outputShape[node.outputShape.length - 1];
        const stat = (key: 'mean' | 'variance'): Float32Array => {
          const weight = this.optionalWeight(node, key);
          if (weight) return Float32Array.from(weight.values);
          const given = config[key];
          return Float32Array.from({ length: c }, (_, i) => (Array.isArray(given) ? given[i] : given));
        };
        const mean = stat('mean');
        const deviation = stat('variance').map((v) => Math.max(Math.sqrt(v), 1e-7));
        const shape = node.outputShape.length === 3 ? [1, c, 1, 1] : [1, c];
        const meanName = this.floatInit(`${base}.mean`, shape, mean);
        const deviationName = this.floatInit(`${base}.std`, shape, deviation);
        if (config.invert) return this.op('Add', [this.op('Mul', [x, deviationName], `${base}_scale`), meanName], base);
        return this.op('Div', [this.op('Sub', [x, meanName], `${base}_center`), deviationName], base);
      }
      case 'ChannelShuffle': {
        // PyTorch's channel_shuffle: [N, C, H, W] -> [N, g, C/g, H, W] -> transpose(1, 2) -> [N, C, H, W].
        const [h, w, c] = node.outputShape;
        const groups = config.groups as number;
        const grid = this.op('Reshape', [x, this.int64Init(`${base}_grid`, [0, groups, c / groups, h, w])], `${base}_grid`);
        const swapped = this.op('Transpose', [grid], `${base}_swap`, { perm: [0, 2, 1, 3, 4] });
        return this.op('Reshape', [swapped, this.int64Init(`${base}_shape`, [0, c, h, w])], base);
      }
      case 'ChannelSlice': {
        const begin = config.begin as number;
        return this.op('Slice', [x, this.int64Init(`${base}_starts`, [begin]), this.int64Init(`${base}_ends`, [begin + (config.size as number)]), this.int64Init(`${base}_axes`, [1])], base);
      }
      case 'ZeroPadding2D': {
        const padding = config.padding;
        const [[top, bottom], [left, right]] = typeof padding === 'number' ? [[padding, padding], [padding, padding]] : (padding as number[][]).map((p) => (Array.isArray(p) ? p : [p, p]));
        return this.op('Pad', [x, this.int64Init(`${base}_pads`, [0, 0, top, left, 0, 0, bottom, right])], base, { mode: 'constant' });
      }
      case 'Cropping2D': {
        const [[top, bottom], [left, right]] = config.cropping as number[][];
        const [h, w] = node.inputShapes[0];
        return this.op('Slice', [x, this.int64Init(`${base}_starts`, [top, left]), this.int64Init(`${base}_ends`, [h - bottom, w - right]), this.int64Init(`${base}_axes`, [2, 3])], base);
      }
      case 'UpSampling2D': {
        if ((config.interpolation ?? 'nearest') !== 'nearest') this.fail(node, `interpolation '${config.interpolation}'; only nearest is exported`);
        const [sh, sw] = pair(config.size, 2);
        return this.op('Resize', [x, '', this.floatInit(`${base}_scales`, [4], [1, 1, sh, sw])], base, {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        });
      }
      case 'Rescaling': {
        let y = x;
        const scale = Number(config.scale ?? 1);
        const offset = Number(config.offset ?? 0);
        if (scale !== 1) y = this.op('Mul', [y, this.floatInit(`${base}_scale`, [], [scale])], offset !== 0 ? `${base}_mul` : base);
        if (offset !== 0) y = this.op('Add', [y, this.floatInit(`${base}_offset`, [], [offset])], base);
        return y === x ? this.op('Identity', [x], base) : y;
      }
      default:
        this.fail(node, 'no ONNX mapping for this layer class');
    }
  }

  /** Keras Reshape in NHWC terms, computed on NCHW tensors: to NHWC, reshape, back to NCHW. */
  private reshape(node: GraphNode, x: string, base: string): string {
    const inShape = node.inputShapes[0];
    const target = node.outputShape;
    const isUnitMap = (shape: number[]) => shape.length === 3 && shape[0] === 1 && shape[1] === 1;
    // A 1x1 map has the same memory order in NCHW and NHWC: no transposes needed.
    const source = inShape.length === 3 && !isUnitMap(inShape) ? this.op('Transpose', [x], `${base}_nhwc`, { perm: [0, 2, 3, 1] }) : x;
    if (target.length === 3 && isUnitMap(target)) return this.op('Reshape', [source, this.int64Init(`${base}_shape`, [0, target[2], 1, 1])], base);
    if (target.length !== 3) return this.op('Reshape', [source, this.int64Init(`${base}_shape`, [0, ...target])], base);
    const reshaped = this.op('Reshape', [source, this.int64Init(`${base}_shape`, [0, ...target])], `${base}_nhwc_out`);
    return this.op('Transpose', [reshaped], base, { perm: [0, 3, 1, 2] });
  }

  run(): string[] {
    this.usedNames.add(this.inputName);
    for (const node of this.graph.nodes) this.tensorOf.set(node.id, this.convertNode(node));
    return this.graph.outputIds.map((id) => this.tensorOf.get(id)!);
  }
}

/** Options of {@link exportOnnxBytes}: the interface names, from the imported original when there is one. */
export interface OnnxExportOptions {
  source?: OnnxSourceInfo;
  producerVersion?: string;
}

/**
 * Serializes a (deployed) model as an ONNX ModelProto: NCHW input [batch, C, H, W], the original's
 * input and output names and batch dimension when `source` is given ('input'/'output' and a
 * symbolic 'batch' otherwise).
 * @throws PasInputError naming the first layer that has no ONNX mapping.
 */
export function exportOnnxBytes(model: tf.LayersModel, options: OnnxExportOptions = {}): Uint8Array {
  const graph = graphFromModel(model);
  if (graph.inputIds.length !== 1 || graph.outputIds.length !== 1) throw new PasInputError('only single-input, single-output models are written as ONNX');
  const inputName = options.source?.inputName ?? 'input';
  const outputName = options.source?.outputName ?? 'output';
  const writer = new OnnxWriter(graph, inputName);
  const [last] = writer.run();
  writer.nodes.push({ name: `${outputName}_identity`, op_type: 'Identity', input: [last], output: [outputName], attribute: [] });
  const inputNode = graph.nodes.find((n) => n.id === graph.inputIds[0])!;
  const outputNode = graph.nodes.find((n) => n.id === graph.outputIds[0])!;
  const dim = (value: number | string) => (typeof value === 'number' ? { dim_value: value } : { dim_param: value });
  const nchw = (shape: number[]) => (shape.length === 3 ? [shape[2], shape[0], shape[1]] : shape);
  const valueInfo = (name: string, batch: number | string, shape: number[]) => ({
    name,
    type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: [dim(batch), ...nchw(shape).map(dim)] } } },
  });
  const inputBatch = options.source?.inputBatchDim ?? 'batch';
  const outputBatch = options.source?.outputBatchDim ?? inputBatch;
  const proto = modelProto();
  const message = proto.fromObject({
    ir_version: EXPORT_IR_VERSION,
    producer_name: 'pas (Pruning-as-Search)',
    producer_version: options.producerVersion ?? '',
    opset_import: [{ domain: '', version: EXPORT_OPSET }],
    graph: {
      name: graph.name,
      node: writer.nodes,
      initializer: writer.initializers,
      input: [valueInfo(inputName, inputBatch, inputNode.outputShape)],
      output: [valueInfo(outputName, outputBatch, outputNode.outputShape)],
    },
  });
  return proto.encode(message).finish();
}
