import * as tf from '@tensorflow/tfjs';

/**
 * Keras' `Normalization` preprocessing layer, which TF.js 4 does not have: keras.applications'
 * EfficientNets (B0-B7, V2) put one after their input's Rescaling, so a converted EfficientNet
 * model.json would not load. Same computation as Keras: (x - mean) / max(sqrt(variance), 1e-7),
 * or with `invert` x * sqrt(variance) + mean, per channel (last axis only).
 *
 * The statistics come from the config (`mean`, `variance`) when Keras was given them, else from
 * the weights Keras' `adapt` fills: `mean`, `variance` and `count` (count is only adapt's running
 * total; the converter writes Keras' int64 as int32, which the loader turns into float32), all
 * non-trainable.
 */
export interface KerasNormalizationArgs {
  name?: string;
  trainable?: boolean;
  axis?: number | number[] | null;
  mean?: number | number[] | null;
  variance?: number | number[] | null;
  invert?: boolean;
}

const EPSILON = 1e-7;

export class KerasNormalization extends tf.layers.Layer {
  static className = 'Normalization';
  readonly axis: number | number[] | null;
  readonly invert: boolean;
  private readonly givenMean: number | number[] | null;
  private readonly givenVariance: number | number[] | null;
  private mean: tf.LayerVariable | null = null;
  private variance: tf.LayerVariable | null = null;

  constructor(args: KerasNormalizationArgs = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.axis = args.axis ?? -1;
    this.invert = args.invert ?? false;
    this.givenMean = args.mean ?? null;
    this.givenVariance = args.variance ?? null;
    if ((this.givenMean === null) !== (this.givenVariance === null)) {
      throw new Error(`Normalization '${this.name}': give both mean and variance, or neither`);
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const rank = shape.length;
    const axes = Array.isArray(this.axis) ? this.axis : [this.axis];
    if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank - 1)) {
      throw new Error(`Normalization '${this.name}': only per-channel statistics (axis -1) are supported, not axis ${JSON.stringify(this.axis)}`);
    }
    const channels = shape[rank - 1];
    if (channels == null) throw new Error(`Normalization '${this.name}': the channel dimension is unknown`);
    if (this.givenMean === null) {
      this.mean = this.addWeight('mean', [channels], 'float32', tf.initializers.zeros(), undefined, false);
      this.variance = this.addWeight('variance', [channels], 'float32', tf.initializers.ones(), undefined, false);
      // float32, not Keras' int64: the engine's weights are float32 (io/kerasNormalization.ts converts a converter's int32).
      this.addWeight('count', [], 'float32', tf.initializers.zeros(), undefined, false);
    }
    this.built = true;
  }

  /** Mean and variance as tensors that broadcast over the last axis. */
  private statistics(channels: number): [tf.Tensor, tf.Tensor] {
    if (this.mean && this.variance) return [this.mean.read(), this.variance.read()];
    const asVector = (v: number | number[]) => (Array.isArray(v) ? tf.tensor1d(v) : tf.fill([channels], v));
    return [asVector(this.givenMean!), asVector(this.givenVariance!)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [mean, variance] = this.statistics(x.shape[x.shape.length - 1]);
      const deviation = tf.maximum(tf.sqrt(variance), EPSILON);
      return this.invert ? tf.add(tf.mul(x, deviation), mean) : tf.div(tf.sub(x, mean), deviation);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis, mean: this.givenMean, variance: this.givenVariance, invert: this.invert };
  }
}
tf.serialization.registerClass(KerasNormalization);
