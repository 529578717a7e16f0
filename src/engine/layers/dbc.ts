import * as tf from '@tensorflow/tfjs';

/**
 * The binary channel mask with a straight-through estimator: forward `w > 0.5 ? 1 : 0`,
 * backward the identity in `w` (PaS: `w_used = w - stopgrad(w - (w > 0.5))`).
 */
export const binaryMaskSte = tf.customGrad(((latent: tf.Tensor) => ({
  value: binaryMask(latent),
  gradFunc: (dy: tf.Tensor) => [dy],
  // customGrad's typing wants a variadic signature; this function has exactly one input.
})) as any) as unknown as (latent: tf.Tensor) => tf.Tensor;

/** Threshold above which a latent keeps its channel; shared with mask bookkeeping outside tfjs. */
export const KEEP_THRESHOLD = 0.5;

/**
 * The one rule for which channels a latent vector keeps, used everywhere masks are read outside
 * tfjs (budget counts, selection, pruning, folding): `w > 0.5`, except that a layer never loses its last channel: when no latent is above
 * the threshold, the channels with the largest latent stay. A layer of width zero would cut the
 * network (and its BN, fed zeros, blows up the gradients); pruning applies the same rule
 * (`keptChannelsFromMasks`), so the masked and the pruned model stay equal.
 */
export function keptChannelIndices(latent: ArrayLike<number>): number[] {
  const kept: number[] = [];
  for (let c = 0; c < latent.length; c++) if (latent[c] > KEEP_THRESHOLD) kept.push(c);
  if (kept.length > 0) return kept;
  let strongest = -Infinity;
  for (let c = 0; c < latent.length; c++) strongest = Math.max(strongest, latent[c]);
  for (let c = 0; c < latent.length; c++) if (latent[c] === strongest) kept.push(c);
  return kept;
}

/** The tensor form of {@link keptChannelIndices}: the mask the layer multiplies its input by. */
export function binaryMask(latent: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const above = tf.greater(latent, KEEP_THRESHOLD);
    const strongest = tf.equal(latent, tf.max(latent));
    return tf.cast(tf.where(tf.any(above), above, strongest), 'float32');
  });
}

export interface DbcLayerArgs {
  name?: string;
  trainable?: boolean;
  /** Initial latent value of every channel. PaS model builders use 1.0 (the layer's own default is 0.6 in the paper's code). */
  initialValue?: number;
}

/**
 * Depth-wise binary convolution (DBC): one latent scalar per channel, the channel multiplied by
 * its binary mask. Searching trains the latents (through the STE) together with the network;
 * frozen-mask fine-tuning sets `trainable = false`.
 */
export class DepthwiseBinaryConv extends tf.layers.Layer {
  static className = 'DepthwiseBinaryConv';
  readonly initialValue: number;
  private latent: tf.LayerVariable | null = null;

  constructor(args: DbcLayerArgs = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.initialValue = args.initialValue ?? 1.0;
    if (!Number.isFinite(this.initialValue)) {
      throw new Error(`DepthwiseBinaryConv: initialValue must be finite, got ${args.initialValue}`);
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error(`DepthwiseBinaryConv '${this.name}': channel dimension is unknown`);
    this.latent = this.addWeight(
      'latent',
      [channels],
      'float32',
      tf.initializers.constant({ value: this.initialValue }),
      undefined,
      true,
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return tf.mul(x, binaryMaskSte(this.latent!.read()));
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initialValue: this.initialValue };
  }
}
tf.serialization.registerClass(DepthwiseBinaryConv);
