/**
 * BatchNormalization in training mode on wasm as two kernel calls per layer and step: one forward
 * kernel (batch mean and variance, then the normalization) and one gradient kernel (dx, dgamma,
 * dbeta), instead of tfjs-layers' `moments` + `batchNorm` and their gradients: 33 engine calls per
 * layer (Mean, Sub, Square, Mean, FusedBatchNorm, the reshapes, and their taped gradients).
 *
 * Why: a data-parallel step halves each thread's images but not its kernel calls, and every call
 * pays the tfjs engine's bookkeeping (tape, tensor tracking, disposal). A RepVGG-A0 step made
 * ~4,100 calls, two thirds of them BatchNorm's; their fixed cost did not shrink with two workers
 * (docs/backends.md). Inside the two kernels the full-size work runs as XNNPACK calls without the
 * engine (1x1 depthwise convs with bias for the per-channel affine maps, average pooling for the
 * per-channel sums).
 *
 * Forward, per channel c over the n = N*H*W values: mean, variance = mean((x - mean)^2) (biased,
 * as tfjs's `moments`), y = x * a + b with a = gamma / sqrt(variance + eps), b = beta - mean * a.
 * Gradient, with S1 = sum(dy), S2 = sum(dy * (x - mean)) and r = 1 / sqrt(variance + eps):
 *   dbeta = S1, dgamma = r * S2,
 *   dx = a * dy + x * B + C with B = -a * r^2 * S2 / n + 2 * dvar / n and
 *   C = -a * S1 / n - B * mean + dmean / n,
 * which is the full training-mode gradient (through the batch statistics), plus any gradient that
 * reaches the mean and variance outputs themselves (dmean, dvar; zero when only y is used).
 * The per-channel coefficients are computed in double and rounded once.
 */
import * as tf from '@tensorflow/tfjs';
import { channelAffine } from './channel-affine';
import { reduceLeadingAxes } from './leading-axis-reductions';
import { readDoubles, simdKernels, type SimdKernels } from './simd/simdKernels';
import { asWasmBackend, floatView, heapOffset, makeFloatOutput, releaseAll, runWasmKernel, type WasmBackendView } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Custom kernel names: not tfjs kernels, so nothing else can collide with them. */
export const BATCH_NORM_TRAINING_KERNEL = 'PasBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD_KERNEL = 'PasBatchNormTrainingGrad';

interface BatchNormAttrs {
  varianceEpsilon: number;
}

/** A copy of a per-channel tensor in double (copies: later allocations may move the heap). */
function channelValues(backend: WasmBackendView, info: tf.TensorInfo): Float64Array {
  return Float64Array.from(floatView(backend, info));
}

/** Per-channel sums or means over every axis but the last. */
function perChannel(backend: WasmBackendView, x: tf.TensorInfo, mode: 'Sum' | 'Mean'): tf.TensorInfo {
  const channels = x.shape[x.shape.length - 1];
  return reduceLeadingAxes(backend, x, x.shape.length - 1, mode, [channels]);
}

/** Zeroed scratch of `count` doubles in the heap (a float32 tensor of twice the length). */
function doubleScratch(backend: WasmBackendView, count: number): tf.TensorInfo {
  return makeFloatOutput(backend, [2 * count], true);
}

/** The `count` doubles a kernel summed into `scratch`. */
function readSums(backend: WasmBackendView, scratch: tf.TensorInfo, count: number): Float64Array {
  return readDoubles(floatView(backend, scratch).buffer as ArrayBuffer, heapOffset(backend, scratch.dataId), count);
}

/**
 * The forward kernel by our SIMD kernels: three reads of x (sums, centered squares, the affine
 * map) and one write, where the XNNPACK route reads five times and writes three.
 */
function batchNormTrainingBySimd(backend: WasmBackendView, kernels: SimdKernels, x: tf.TensorInfo, scale: tf.TensorInfo, offset: tf.TensorInfo, varianceEpsilon: number): tf.TensorInfo[] {
  const channels = x.shape[x.shape.length - 1];
  const pixels = tf.util.sizeFromShape(x.shape) / channels;
  const sums = doubleScratch(backend, channels);
  const mean = makeFloatOutput(backend, [channels], false);
  const variance = makeFloatOutput(backend, [channels], false);
  const coefficients = makeFloatOutput(backend, [2 * channels], false);
  const y = makeFloatOutput(backend, x.shape, false);
  const [xAt, sumsAt, meanAt, coefficientsAt, yAt] = [x, sums, mean, coefficients, y].map((t) => heapOffset(backend, t.dataId));
  kernels.channelSums(xAt, 0, 0, pixels, channels, sumsAt, 0);
  const means = floatView(backend, mean);
  const meanSums = readSums(backend, sums, channels);
  for (let c = 0; c < channels; c++) means[c] = meanSums[c] / pixels;
  floatView(backend, sums).fill(0);
  kernels.channelSums(xAt, 0, meanAt, pixels, channels, sumsAt, 0);
  const variances = floatView(backend, variance);
  const squareSums = readSums(backend, sums, channels);
  for (let c = 0; c < channels; c++) variances[c] = squareSums[c] / pixels;
  const gammas = floatView(backend, scale);
  const betas = floatView(backend, offset);
  const ab = floatView(backend, coefficients);
  for (let c = 0; c < channels; c++) {
    const a = gammas[c] / Math.sqrt(variances[c] + varianceEpsilon);
    ab[c] = a;
    ab[channels + c] = betas[c] - means[c] * a;
  }
  kernels.channelAffine(xAt, 0, pixels, channels, coefficientsAt, 0, coefficientsAt + channels * 4, yAt);
  releaseAll(backend, [sums, coefficients]);
  return [y, mean, variance];
}

function batchNormTraining(args: KernelArgs): tf.TensorInfo[] {
  const backend = asWasmBackend(args.backend);
  const { x, scale, offset } = args.inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
  const { varianceEpsilon } = args.attrs as unknown as BatchNormAttrs;
  const kernels = simdKernels(backend);
  if (kernels) return batchNormTrainingBySimd(backend, kernels, x, scale, offset, varianceEpsilon);
  const mean = perChannel(backend, x, 'Mean');
  const means = channelValues(backend, mean);
  const centered = channelAffine(backend, x, new Float64Array(means.length).fill(1), means.map((m) => -m));
  const squared = runWasmKernel(backend, 'Multiply', { a: centered, b: centered }, {});
  const variance = perChannel(backend, squared, 'Mean');
  releaseAll(backend, [centered, squared]);
  const variances = channelValues(backend, variance);
  const gammas = channelValues(backend, scale);
  const betas = channelValues(backend, offset);
  const a = gammas.map((g, c) => g / Math.sqrt(variances[c] + varianceEpsilon));
  const b = betas.map((beta, c) => beta - means[c] * a[c]);
  return [channelAffine(backend, x, a, b), mean, variance];
}

/** The per-channel coefficients of the gradient (module comment), in double. */
function gradientCoefficients(
  s1: ArrayLike<number>,
  sXY: ArrayLike<number>,
  means: ArrayLike<number>,
  variances: ArrayLike<number>,
  gammas: ArrayLike<number>,
  dMeans: ArrayLike<number>,
  dVariances: ArrayLike<number>,
  n: number,
  varianceEpsilon: number,
): { a: Float64Array; B: Float64Array; C: Float64Array; dGamma: Float64Array } {
  const channels = means.length;
  const a = new Float64Array(channels);
  const B = new Float64Array(channels);
  const C = new Float64Array(channels);
  const dGamma = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const r = 1 / Math.sqrt(variances[c] + varianceEpsilon);
    // sum(dy * (x - mean)) without materializing x - mean.
    const s2 = sXY[c] - means[c] * s1[c];
    a[c] = gammas[c] * r;
    B[c] = (-a[c] * r * r * s2 + 2 * dVariances[c]) / n;
    C[c] = (-a[c] * s1[c] + dMeans[c]) / n - B[c] * means[c];
    dGamma[c] = r * s2;
  }
  return { a, B, C, dGamma };
}

/** The gradient kernel by our SIMD kernels: one pass for both sums, one for dx (two reads of dy and x, one write). */
function batchNormTrainingGradBySimd(backend: WasmBackendView, kernels: SimdKernels, inputs: Record<string, tf.TensorInfo>, varianceEpsilon: number): tf.TensorInfo[] {
  const { dy, x, mean, variance, scale, dMean, dVariance } = inputs;
  const channels = x.shape[x.shape.length - 1];
  const n = tf.util.sizeFromShape(x.shape) / channels;
  const sums = doubleScratch(backend, 2 * channels);
  const coefficients = makeFloatOutput(backend, [3 * channels], false);
  const dx = makeFloatOutput(backend, x.shape, false);
  const dScale = makeFloatOutput(backend, [channels], false);
  const dOffset = makeFloatOutput(backend, [channels], false);
  const [dyAt, xAt, sumsAt, coefficientsAt, dxAt] = [dy, x, sums, coefficients, dx].map((t) => heapOffset(backend, t.dataId));
  kernels.channelSums(dyAt, xAt, 0, n, channels, sumsAt, sumsAt + channels * 8);
  const both = readSums(backend, sums, 2 * channels);
  const s1 = both.subarray(0, channels);
  const { a, B, C, dGamma } = gradientCoefficients(s1, both.subarray(channels), floatView(backend, mean), floatView(backend, variance), floatView(backend, scale), floatView(backend, dMean), floatView(backend, dVariance), n, varianceEpsilon);
  const abc = floatView(backend, coefficients);
  abc.set(a);
  abc.set(B, channels);
  abc.set(C, 2 * channels);
  kernels.channelAffine(dyAt, xAt, n, channels, coefficientsAt, coefficientsAt + channels * 4, coefficientsAt + channels * 8, dxAt);
  floatView(backend, dScale).set(dGamma);
  floatView(backend, dOffset).set(s1); // dbeta is sum(dy)
  releaseAll(backend, [sums, coefficients]);
  return [dx, dScale, dOffset];
}

function batchNormTrainingGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = asWasmBackend(args.backend);
  const { dy, x, mean, variance, scale, dMean, dVariance } = args.inputs as Record<string, tf.TensorInfo>;
  const { varianceEpsilon } = args.attrs as unknown as BatchNormAttrs;
  const kernels = simdKernels(backend);
  if (kernels) return batchNormTrainingGradBySimd(backend, kernels, args.inputs as Record<string, tf.TensorInfo>, varianceEpsilon);
  const channels = x.shape[x.shape.length - 1];
  const n = tf.util.sizeFromShape(x.shape) / channels;
  const sumDy = perChannel(backend, dy, 'Sum');
  const dyTimesX = runWasmKernel(backend, 'Multiply', { a: dy, b: x }, {});
  const sumDyX = perChannel(backend, dyTimesX, 'Sum');
  releaseAll(backend, [dyTimesX]);
  const s1 = channelValues(backend, sumDy);
  const sXY = channelValues(backend, sumDyX);
  releaseAll(backend, [sumDyX]);
  const means = channelValues(backend, mean);
  const variances = channelValues(backend, variance);
  const gammas = channelValues(backend, scale);
  const dMeans = channelValues(backend, dMean);
  const dVariances = channelValues(backend, dVariance);
  const { a, B, C, dGamma } = gradientCoefficients(s1, sXY, means, variances, gammas, dMeans, dVariances, n, varianceEpsilon);
  const scaledDy = channelAffine(backend, dy, a);
  const affineX = channelAffine(backend, x, B, C);
  const dx = runWasmKernel(backend, 'Add', { a: scaledDy, b: affineX }, {});
  releaseAll(backend, [scaledDy, affineX]);
  const dScale = backend.makeOutput([channels], 'float32');
  floatView(backend, dScale).set(dGamma);
  // dbeta is sum(dy) itself.
  return [dx, dScale, sumDy];
}

export function batchNormTrainingKernels(): tf.KernelConfig[] {
  return [
    { kernelName: BATCH_NORM_TRAINING_KERNEL, backendName: 'wasm', kernelFunc: batchNormTraining as unknown as tf.KernelFunc },
    { kernelName: BATCH_NORM_TRAINING_GRAD_KERNEL, backendName: 'wasm', kernelFunc: batchNormTrainingGrad as unknown as tf.KernelFunc },
  ];
}

let installed = false;

/** Registers the forward kernel's gradient (idempotent). */
export function installBatchNormTrainingGradient(): void {
  if (installed) return;
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAINING_KERNEL,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, true, true],
    gradFunc: (dy, saved, attrs) => {
      const [x, scale, mean, variance] = saved;
      const [dOutput, dMean, dVariance] = dy as tf.Tensor[];
      // Computed once, outside the per-input closures: tfjs calls each closure separately.
      const [dx, dScale, dOffset] = tf.engine().runKernel(
        BATCH_NORM_TRAINING_GRAD_KERNEL,
        { dy: dOutput, x, mean, variance, scale, dMean, dVariance },
        attrs,
      ) as tf.Tensor[];
      return { x: () => dx, scale: () => dScale, offset: () => dOffset };
    },
  });
  installed = true;
}

/**
 * y, batch mean and batch variance of BatchNormalization in training mode over the last axis
 * (float32 x of rank >= 2, per-channel gamma and beta), through the fused kernels. wasm only.
 */
export function batchNormInTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, varianceEpsilon: number): { output: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const [output, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING_KERNEL, { x, scale: gamma, offset: beta }, { varianceEpsilon } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { output, mean, variance };
}
