/**
 * Kernels whose stock wasm versions copy memory for nothing.
 *
 * - Identity: the engine clones every tensor it saves for the backward pass (`tf.clone` runs
 *   Identity), and wasm's Identity copies the buffer. tfjs tensors are immutable, so sharing the
 *   buffer with a reference count is what the cpu backend does too. RepVGG training ran ~1800
 *   Identity copies per step.
 * - Cast to the same dtype: a share as well.
 * - Slice: the stock kernel first copies the whole input out of the heap (`readSync`), then
 *   slices; here contiguous runs are copied straight from heap to heap.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

interface RefCounting {
  incRef(dataId: tf.DataId): void;
}

function share(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  return share(x, args.backend);
}

function castKernel(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
    if (x.dtype === dtype && dtype !== 'string') return share(x, args.backend);
    return stock(args as Parameters<tf.KernelFunc>[0]);
  }) as tf.KernelFunc;
}

function sliceKernel(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string' || x.shape.length === 0) return stock(args as Parameters<tf.KernelFunc>[0]);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [start, extent] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(extent, x.dtype);
    if (tf.util.sizeFromShape(extent) === 0) return out;
    const source = backend.typedArrayFromHeap(x);
    const target = backend.typedArrayFromHeap(out);
    const rank = x.shape.length;
    const strides = [...tf.util.computeStrides(x.shape), 1];
    // Trailing dims taken whole, plus the first partial one, form one contiguous run per index
    // of the dims before it.
    let runDim = rank - 1;
    while (runDim > 0 && start[runDim] === 0 && extent[runDim] === x.shape[runDim]) runDim--;
    const runLength = extent[runDim] * strides[runDim];
    const outer = extent.slice(0, runDim);
    const outerCount = tf.util.sizeFromShape(outer);
    const index = new Array<number>(runDim).fill(0);
    let written = 0;
    for (let r = 0; r < outerCount; r++) {
      let from = start[runDim] * strides[runDim];
      for (let d = 0; d < runDim; d++) from += (start[d] + index[d]) * strides[d];
      target.set(source.subarray(from, from + runLength), written);
      written += runLength;
      for (let d = runDim - 1; d >= 0; d--) {
        if (++index[d] < outer[d]) break;
        index[d] = 0;
      }
    }
    return out;
  }) as tf.KernelFunc;
}

/** Identity, Cast and Slice configs; Cast and Slice fall back to the given stock kernels. */
export function copyFreeKernels(stockCast: tf.KernelFunc, stockSlice: tf.KernelFunc): tf.KernelConfig[] {
  return [
    { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identity as tf.KernelFunc },
    { kernelName: 'Cast', backendName: 'wasm', kernelFunc: castKernel(stockCast) },
    { kernelName: 'Slice', backendName: 'wasm', kernelFunc: sliceKernel(stockSlice) },
  ];
}
