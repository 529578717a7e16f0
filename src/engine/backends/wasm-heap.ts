/**
 * The small slice of the wasm backend's API that our kernels use: reading and writing tensors in
 * the wasm heap, allocating outputs, and calling the backend's own (XNNPACK) kernels.
 *
 * tfjs-backend-wasm does not export a typed kernel API, so we describe what we rely on here, in
 * one place, instead of casting to `any` in every kernel.
 */
import * as tf from '@tensorflow/tfjs';

/** What a kernel receives as `backend` when it runs on wasm. */
export interface WasmBackendView {
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Narrows the untyped `backend` argument of a kernel function. */
export function asWasmBackend(backend: unknown): WasmBackendView {
  return backend as WasmBackendView;
}

/**
 * A float32 view of a tensor's heap memory. Views go stale when the heap grows, which any
 * allocation may do: take views only after the last `makeOutput` of a kernel.
 */
export function floatView(backend: WasmBackendView, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') {
    throw new Error(`wasm training kernels expect float32 tensors, got ${info.dtype}`);
  }
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Allocates a float32 output; the heap is not zeroed by malloc, so `zero` asks for it. */
export function makeFloatOutput(backend: WasmBackendView, shape: number[], zero: boolean): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  if (zero) floatView(backend, out).fill(0);
  return out;
}

/**
 * Runs another kernel registered for wasm (Conv2D, Transpose, ...) on tensors we hold, without
 * going through the engine: the result is not tracked by `tf.memory()`, so the caller must
 * either return it or release it with `backend.disposeData`.
 */
export function runWasmKernel(
  backend: WasmBackendView,
  kernelName: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (!kernel) throw new Error(`kernel '${kernelName}' is not registered for wasm`);
  const result = kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend: backend as unknown as tf.KernelBackend });
  if (Array.isArray(result)) throw new Error(`kernel '${kernelName}' returned several outputs`);
  return result;
}

/** Releases intermediate tensors created inside a kernel. */
export function releaseAll(backend: WasmBackendView, infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId, true);
}

/** A tensor's byte offset in the heap: what our SIMD kernels (simd/) take as a pointer. */
export function heapOffset(backend: WasmBackendView, dataId: tf.DataId): number {
  const data = backend.dataIdMap.get(dataId);
  if (!data) throw new Error('tensor is not on the wasm backend');
  return data.memoryOffset;
}
