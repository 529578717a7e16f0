import * as tf from '@tensorflow/tfjs';

/**
 * Channel rearrangements that PyTorch models write with tensor ops and tfjs-layers has no layer
 * for (ShuffleNet): a channel shuffle and a slice of the channels. The ONNX importer writes them;
 * both are held at full width by PaS (opaque rules: they move channels between groups).
 */

const lastAxisOf = (shape: tf.Shape): number => {
  const channels = shape[shape.length - 1];
  if (channels == null) throw new Error('the channel dimension is unknown');
  return channels;
};

/**
 * ShuffleNet's channel shuffle: channels as a [groups, C/groups] grid, transposed. Output channel
 * i2 * groups + i1 is input channel i1 * (C / groups) + i2 (PyTorch's view - transpose(1, 2) - view).
 */
export class ChannelShuffle extends tf.layers.Layer {
  static className = 'ChannelShuffle';
  readonly groups: number;

  constructor(args: { name?: string; trainable?: boolean; groups: number }) {
    super({ name: args.name, trainable: args.trainable });
    this.groups = args.groups;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const channels = lastAxisOf((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape);
    if (!Number.isInteger(this.groups) || this.groups < 1 || channels % this.groups !== 0) {
      throw new Error(`ChannelShuffle '${this.name}': ${channels} channels cannot be split into ${this.groups} groups`);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const shape = x.shape;
      const channels = shape[shape.length - 1];
      const grid = tf.reshape(x, [...shape.slice(0, -1), this.groups, channels / this.groups]);
      const rank = grid.shape.length;
      const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
      return tf.reshape(tf.transpose(grid, perm), shape);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}
tf.serialization.registerClass(ChannelShuffle);

/** Channels begin .. begin + size - 1 of the input (PyTorch's `x.chunk(2, dim=1)`, ONNX Split). */
export class ChannelSlice extends tf.layers.Layer {
  static className = 'ChannelSlice';
  readonly begin: number;
  readonly size: number;

  constructor(args: { name?: string; trainable?: boolean; begin: number; size: number }) {
    super({ name: args.name, trainable: args.trainable });
    this.begin = args.begin;
    this.size = args.size;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const channels = lastAxisOf((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape);
    if (!(this.begin >= 0 && this.size > 0 && this.begin + this.size <= channels)) {
      throw new Error(`ChannelSlice '${this.name}': channels ${this.begin}..${this.begin + this.size - 1} are not inside ${channels}`);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const begin = x.shape.map((_, i) => (i === x.shape.length - 1 ? this.begin : 0));
      const size = x.shape.map((d, i) => (i === x.shape.length - 1 ? this.size : d));
      return tf.slice(x, begin, size);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.size];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), begin: this.begin, size: this.size };
  }
}
tf.serialization.registerClass(ChannelSlice);
