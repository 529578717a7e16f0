/**
 * Select (`tf.where`) on wasm for bool and int32 values. The stock 4.22 kernel corrupts the wasm
 * heap when the chosen-from tensors are bool (it writes 4-byte elements into a 1-byte buffer):
 * the DBC mask (`where(any(above), above, strongest)`) crashed later, unrelated frees with
 * "memory access out of bounds". float32 keeps the stock kernel, which is correct.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function selectKernel(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const { condition, t, e } = args.inputs as { condition: tf.TensorInfo; t: tf.TensorInfo; e: tf.TensorInfo };
    if (t.dtype === 'float32' || t.dtype === 'string') return stock(args as Parameters<tf.KernelFunc>[0]);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(t.shape, t.dtype);
    const size = tf.util.sizeFromShape(t.shape);
    if (size === 0) return out;
    const conditions = backend.typedArrayFromHeap(condition);
    const whenTrue = backend.typedArrayFromHeap(t);
    const whenFalse = backend.typedArrayFromHeap(e);
    const target = backend.typedArrayFromHeap(out);
    // The condition has t's shape, or is 1-D and picks whole rows along t's first axis.
    const perCondition = conditions.length === size ? 1 : size / conditions.length;
    for (let i = 0; i < size; i++) target[i] = conditions[Math.floor(i / perCondition)] ? whenTrue[i] : whenFalse[i];
    return out;
  }) as tf.KernelFunc;
}

/** Select config wrapping the stock kernel (kept for float32). */
export function safeSelectKernel(stock: tf.KernelFunc): tf.KernelConfig {
  return { kernelName: 'Select', backendName: 'wasm', kernelFunc: selectKernel(stock) };
}
