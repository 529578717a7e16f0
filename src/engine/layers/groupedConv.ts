import * as tf from '@tensorflow/tfjs';

/**
 * A 2-D convolution with `groups` channel groups (PyTorch's `Conv2d(groups=g)`, Keras'
 * `Conv2D(groups=g)`): input channels split into g equal parts, each convolved with its own
 * filters into co/g output channels, outputs side by side. tfjs-layers' Conv2D has no groups, so
 * ResNeXt- and RegNet-style models come through this class: the ONNX importer writes it, and a
 * Keras model.json's `Conv2D` with `groups` > 1 is loaded as it (io/groupedConvs.ts). Depthwise
 * convolutions (one input channel per group) stay DepthwiseConv2D.
 *
 * Weights as Keras stores them: kernel [kh, kw, ci/g, co] (group k owns output channels
 * k*co/g .. (k+1)*co/g - 1), bias [co]. Channels last only. PaS holds the channels it reads and
 * writes at full width (its rule is opaque): pruning would have to remove whole groups.
 */
export interface GroupedConv2DArgs {
  name?: string;
  trainable?: boolean;
  filters: number;
  kernelSize: number | number[];
  strides?: number | number[];
  padding?: 'valid' | 'same';
  dilationRate?: number | number[];
  groups: number;
  useBias?: boolean;
  /** A Keras activation name applied after the bias ('linear': none); deployment may fold a following activation layer in. */
  activation?: string;
  /** Channels last only (Keras' 'channels_last', tfjs's 'channelsLast'). */
  dataFormat?: string;
}

const asPair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v == null ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

export class GroupedConv2D extends tf.layers.Layer {
  static className = 'GroupedConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly dilationRate: [number, number];
  readonly groups: number;
  readonly useBias: boolean;
  readonly activation: string;
  private readonly activationLayer: tf.layers.Layer | null;
  private kernel: tf.LayerVariable | null = null;
  private bias: tf.LayerVariable | null = null;

  constructor(args: GroupedConv2DArgs) {
    super({ name: args.name, trainable: args.trainable });
    this.filters = args.filters;
    this.kernelSize = asPair(args.kernelSize, 1);
    this.strides = asPair(args.strides, 1);
    this.padding = args.padding ?? 'valid';
    this.dilationRate = asPair(args.dilationRate, 1);
    this.groups = args.groups;
    this.useBias = args.useBias ?? true;
    this.activation = args.activation ?? 'linear';
    this.activationLayer = this.activation === 'linear' ? null : tf.layers.activation({ activation: this.activation as never });
    if (args.dataFormat !== undefined && !/^channels_?last$/i.test(args.dataFormat)) {
      throw new Error(`GroupedConv2D '${this.name}': only channels_last is supported, not ${args.dataFormat}`);
    }
    if (!Number.isInteger(this.groups) || this.groups < 1 || this.filters % this.groups !== 0) {
      throw new Error(`GroupedConv2D '${this.name}': ${this.filters} filters cannot be split into ${this.groups} groups`);
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null || channels % this.groups !== 0) {
      throw new Error(`GroupedConv2D '${this.name}': ${channels} input channels cannot be split into ${this.groups} groups`);
    }
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight('kernel', [kh, kw, channels / this.groups, this.filters], 'float32', tf.initializers.glorotUniform({}), undefined, true);
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros(), undefined, true);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      const xs = tf.split(x, this.groups, 3);
      const ks = tf.split(kernel, this.groups, 3);
      const ys = xs.map((xi, g) => tf.conv2d(xi as tf.Tensor4D, ks[g] as tf.Tensor4D, this.strides, this.padding, 'NHWC', this.dilationRate));
      const y = ys.length === 1 ? ys[0] : tf.concat(ys, 3);
      const biased = this.bias ? tf.add(y, this.bias.read()) : y;
      return this.activationLayer ? (this.activationLayer.apply(biased) as tf.Tensor) : biased;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const out = [0, 1].map((i) => {
      const size = shape[1 + i];
      if (size == null) return null;
      if (this.padding === 'same') return Math.ceil(size / this.strides[i]);
      const span = (this.kernelSize[i] - 1) * this.dilationRate[i] + 1;
      return Math.floor((size - span) / this.strides[i]) + 1;
    });
    return [shape[0], out[0], out[1], this.filters];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      dilationRate: this.dilationRate,
      groups: this.groups,
      useBias: this.useBias,
      activation: this.activation,
    };
  }
}
tf.serialization.registerClass(GroupedConv2D);
