/**
 * Sum and Mean over the leading axes of a float32 tensor (e.g. over batch, height and width of an
 * NHWC activation, keeping channels), as one XNNPACK average pooling.
 *
 * The stock wasm kernels reduce only innermost axes, so for this pattern (every BatchNorm, forward
 * and backward, and every broadcast gradient) they first transpose the whole tensor. Other
 * patterns go to the stock kernels unchanged.
 *
 * The tensor is read, without a copy, as one image of `outer / k` x `k` pixels (k: the last reduced
 * axis) with the kept values as channels, and pooled whole: XNNPACK's SIMD average pooling. A JS
 * pass over the heap (double accumulators) did this before; the pooling measured 2.6-16x faster on
 * fresh activations (32x16x16x24: 0.26 vs 0.68 ms; 64x28x28x16: 0.09 vs 1.41 ms; 4x112x112x96:
 * 1.5 vs 13.7 ms) and agreed with it to 5e-8 on values of unit scale. (A matrix-vector product with
 * a row of ones is no alternative: XNNPACK packs the fresh activation as weights on every call.)
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, floatView, releaseAll, runWasmKernel, type WasmBackendView } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Number of leading axes reduced, or 0 when `axes` is not a proper prefix 0..k-1. */
function leadingAxesCount(axis: number | number[], shape: number[]): number {
  const axes = [...tf.util.parseAxisParam(axis, shape)].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return 0;
  return axes.every((a, i) => a === i) ? axes.length : 0;
}

/**
 * Most kept values the pooling takes: XNNPACK's multipass average pooling keeps one row of channels
 * in a buffer on the wasm stack, and 20,480 channels (a [8, 64, 64, 5] tensor reduced over its first
 * axis) overran it: "memory access out of bounds", and a corrupted heap after it. BatchNorm's
 * channels (up to ~2,000) are far below the bound; wider reductions take the JS pass.
 */
const MAX_POOLED_CHANNELS = 4096;

/** The mean of `outer` rows of `inner` values, times `scale`, by one XNNPACK average pooling. */
function pooledMean(backend: WasmBackendView, x: tf.TensorInfo, outer: number, lastReduced: number, inner: number, outShape: number[], scale: number): tf.TensorInfo {
  const rows = outer / lastReduced;
  // The same memory read as one image (a reshape is only a shape).
  const image = { dataId: x.dataId, dtype: x.dtype, shape: [1, rows, lastReduced, inner] };
  const pooled = runWasmKernel(backend, 'AvgPool', { x: image }, { filterSize: [rows, lastReduced], strides: 1, pad: 'valid', dimRoundingMode: undefined });
  const out = backend.makeOutput(outShape, 'float32');
  const means = floatView(backend, pooled);
  const target = floatView(backend, out);
  for (let i = 0; i < inner; i++) target[i] = means[i] * scale;
  releaseAll(backend, [pooled]);
  return out;
}

/**
 * The mean (scale 1) or sum (scale = count of reduced values) over the first `count` axes of a
 * float32 tensor, shaped `outShape`: XNNPACK pooling where it fits, else a JS pass. Also used by
 * the fused BatchNorm training kernels (batchnorm-training.ts).
 */
export function reduceLeadingAxes(backend: WasmBackendView, x: tf.TensorInfo, count: number, mode: 'Sum' | 'Mean', outShape: number[]): tf.TensorInfo {
  const inner = tf.util.sizeFromShape(x.shape.slice(count));
  const outer = tf.util.sizeFromShape(x.shape.slice(0, count));
  // The pooling gives the mean; Sum scales it back up.
  if (outer > 1 && inner > 0 && inner <= MAX_POOLED_CHANNELS) return pooledMean(backend, x, outer, x.shape[count - 1], inner, outShape, mode === 'Mean' ? 1 : outer);
  const out = backend.makeOutput(outShape, 'float32');
  const source = floatView(backend, x);
  // Double accumulators: a float32 running sum over 50k+ values drifts past 1e-4.
  const sums = new Float64Array(inner);
  for (let row = 0; row < outer; row++) {
    const base = row * inner;
    for (let i = 0; i < inner; i++) sums[i] += source[base + i];
  }
  const target = floatView(backend, out);
  const scale = mode === 'Mean' ? 1 / outer : 1;
  for (let i = 0; i < inner; i++) target[i] = sums[i] * scale;
  return out;
}

function makeReduction(kernelName: 'Sum' | 'Mean', stock: tf.KernelFunc): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const count = x.dtype === 'float32' ? leadingAxesCount(axis, x.shape) : 0;
    if (count === 0) return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const kept = x.shape.slice(count);
    const outShape = keepDims ? [...x.shape.slice(0, count).map(() => 1), ...kept] : kept;
    return reduceLeadingAxes(asWasmBackend(args.backend), x, count, kernelName, outShape);
  };
  return { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc };
}

/** Sum and Mean kernel configs wrapping the given stock kernels. */
export function leadingAxisReductionKernels(stockSum: tf.KernelFunc, stockMean: tf.KernelFunc): tf.KernelConfig[] {
  return [makeReduction('Sum', stockSum), makeReduction('Mean', stockMean)];
}
