/**
 * Sum and Mean over the leading axes of a float32 tensor (e.g. over batch, height and width of an
 * NHWC activation, keeping channels), as one pass over the heap.
 *
 * The stock wasm kernels reduce only innermost axes, so for this pattern (every BatchNorm, forward
 * and backward, and every broadcast gradient) they first transpose the whole tensor. Other
 * patterns go to the stock kernels unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, floatView } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Number of leading axes reduced, or 0 when `axes` is not a proper prefix 0..k-1. */
function leadingAxesCount(axis: number | number[], shape: number[]): number {
  const axes = [...tf.util.parseAxisParam(axis, shape)].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return 0;
  return axes.every((a, i) => a === i) ? axes.length : 0;
}

function makeReduction(kernelName: 'Sum' | 'Mean', stock: tf.KernelFunc): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const count = x.dtype === 'float32' ? leadingAxesCount(axis, x.shape) : 0;
    if (count === 0) return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = asWasmBackend(args.backend);
    const kept = x.shape.slice(count);
    const outShape = keepDims ? [...x.shape.slice(0, count).map(() => 1), ...kept] : kept;
    const inner = tf.util.sizeFromShape(kept);
    const outer = tf.util.sizeFromShape(x.shape.slice(0, count));
    // A JS pass over the heap. (An XNNPACK matrix-vector product with a row of ones measured 20x
    // faster on a cached input but 2x slower on a fresh one: it packs x as weights on every call.)
    const out = backend.makeOutput(outShape, 'float32');
    const source = floatView(backend, x);
    // Double accumulators: a float32 running sum over 50k+ values drifts past 1e-4.
    const sums = new Float64Array(inner);
    for (let row = 0; row < outer; row++) {
      const base = row * inner;
      for (let i = 0; i < inner; i++) sums[i] += source[base + i];
    }
    const scale = kernelName === 'Mean' ? 1 / outer : 1;
    const target = floatView(backend, out);
    for (let i = 0; i < inner; i++) target[i] = sums[i] * scale;
    return out;
  };
  return { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc };
}

/** Sum and Mean kernel configs wrapping the given stock kernels. */
export function leadingAxisReductionKernels(stockSum: tf.KernelFunc, stockMean: tf.KernelFunc): tf.KernelConfig[] {
  return [makeReduction('Sum', stockSum), makeReduction('Mean', stockMean)];
}
