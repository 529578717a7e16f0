import * as tf from '@tensorflow/tfjs';
import { BN_MOMENTUM } from './constants';

export type RepVggVariant = 'A0' | 'A1' | 'A2' | 'B0' | 'B1';

/** Blocks per stage and width multipliers (a for stages 1-3, b for the last) from the RepVGG paper. */
const REPVGG_SPECS: Record<RepVggVariant, { blocks: number[]; a: number; b: number }> = {
  A0: { blocks: [1, 2, 4, 14, 1], a: 0.75, b: 2.5 },
  A1: { blocks: [1, 2, 4, 14, 1], a: 1, b: 2.5 },
  A2: { blocks: [1, 2, 4, 14, 1], a: 1.5, b: 2.75 },
  B0: { blocks: [1, 4, 6, 16, 1], a: 1, b: 2.5 },
  B1: { blocks: [1, 4, 6, 16, 1], a: 2, b: 4 },
};

export interface RepVggOptions {
  variant: RepVggVariant;
  inputShape: [number, number, number];
  numClasses: number;
  /** Extra factor on every stage width, so that small variants fit 28x28 or 32x32 inputs. */
  widthMultiplier?: number;
  /** Override the blocks per stage (five stages), e.g. [1, 1, 2, 2, 1] for a tiny net. */
  blocksPerStage?: number[];
  name?: string;
  seed?: number;
}

/** Stage widths [min(64, 64a), 64a, 128a, 256a, 512b], scaled by the extra multiplier. */
export function repVggStageWidths(options: RepVggOptions): number[] {
  const { a, b } = REPVGG_SPECS[options.variant];
  const m = options.widthMultiplier ?? 1;
  const base = [Math.min(64, 64 * a), 64 * a, 128 * a, 256 * a, 512 * b];
  return base.map((w) => Math.max(1, Math.round(w * m)));
}

/**
 * A RepVGG network in its training-time (multi-branch) form:
 * each block is ReLU(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x)), the identity branch present only
 * when in == out channels and stride 1. The first block of each of the five stages has stride 2.
 *
 * Stride-2 blocks pad explicitly (ZeroPadding2D(1) + 'valid' 3x3) as PyTorch does: TF's 'same'
 * padding is asymmetric for stride 2 on even sizes, which would misalign the 3x3 centre with the
 * 1x1 branch and make the fused kernel inexact.
 */
export function buildRepVgg(options: RepVggOptions): tf.LayersModel {
  const spec = REPVGG_SPECS[options.variant];
  if (!spec) throw new Error(`unknown RepVGG variant '${options.variant}'`);
  const blocks = options.blocksPerStage ?? spec.blocks;
  if (blocks.length !== 5) throw new Error('blocksPerStage must list five stages');
  const widths = repVggStageWidths(options);
  const init = (offset: number) =>
    options.seed === undefined ? undefined : tf.initializers.heNormal({ seed: options.seed + offset });

  const input = tf.input({ shape: options.inputShape, name: 'input' });
  let x: tf.SymbolicTensor = input;
  let inChannels = options.inputShape[2];
  let blockIndex = 0;
  for (let stage = 0; stage < 5; stage++) {
    for (let i = 0; i < blocks[stage]; i++) {
      const stride = i === 0 ? 2 : 1;
      x = repVggBlock(x, inChannels, widths[stage], stride, `stage${stage}_block${i}`, init(blockIndex * 2), init(blockIndex * 2 + 1));
      inChannels = widths[stage];
      blockIndex++;
    }
  }
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({ units: options.numClasses, name: 'classifier', kernelInitializer: init(10_000) })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: options.name ?? `repvgg-${options.variant.toLowerCase()}` });
}

function repVggBlock(
  x: tf.SymbolicTensor,
  inChannels: number,
  outChannels: number,
  stride: number,
  name: string,
  init3x3: ReturnType<typeof tf.initializers.heNormal> | undefined,
  init1x1: ReturnType<typeof tf.initializers.heNormal> | undefined,
): tf.SymbolicTensor {
  let padded = x;
  if (stride !== 1) {
    padded = tf.layers.zeroPadding2d({ padding: 1, name: `${name}_pad` }).apply(x) as tf.SymbolicTensor;
  }
  const conv3 = tf.layers
    .conv2d({
      filters: outChannels,
      kernelSize: 3,
      strides: stride,
      padding: stride === 1 ? 'same' : 'valid',
      useBias: false,
      kernelInitializer: init3x3,
      name: `${name}_conv3x3`,
    })
    .apply(padded) as tf.SymbolicTensor;
  const branches = [tf.layers.batchNormalization({ name: `${name}_bn3x3`, momentum: BN_MOMENTUM }).apply(conv3) as tf.SymbolicTensor];
  const conv1 = tf.layers
    .conv2d({
      filters: outChannels,
      kernelSize: 1,
      strides: stride,
      padding: 'valid',
      useBias: false,
      kernelInitializer: init1x1,
      name: `${name}_conv1x1`,
    })
    .apply(x) as tf.SymbolicTensor;
  branches.push(tf.layers.batchNormalization({ name: `${name}_bn1x1`, momentum: BN_MOMENTUM }).apply(conv1) as tf.SymbolicTensor);
  if (inChannels === outChannels && stride === 1) {
    branches.push(tf.layers.batchNormalization({ name: `${name}_bnid`, momentum: BN_MOMENTUM }).apply(x) as tf.SymbolicTensor);
  }
  const sum = tf.layers.add({ name: `${name}_add` }).apply(branches) as tf.SymbolicTensor;
  return tf.layers.reLU({ name: `${name}_relu` }).apply(sum) as tf.SymbolicTensor;
}
