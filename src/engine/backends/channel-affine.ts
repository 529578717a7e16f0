/**
 * y[..., c] = x[..., c] * scale[c] (+ bias[c]) over the last axis of a float32 tensor, as one
 * XNNPACK 1x1 depthwise convolution with bias over x read in place as a 1 x P image of C
 * channels: SIMD, where tfjs-backend-wasm's per-channel paths (FusedBatchNorm, broadcasting
 * binary ops) are scalar loops. Each output is rounded once, as an element-wise op would round it.
 * Shared by batchnorm-forward.ts and channel-broadcast-kernels.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { floatView, makeFloatOutput, releaseAll, runWasmKernel, type WasmBackendView } from './wasm-heap';

export function channelAffine(backend: WasmBackendView, x: tf.TensorInfo, scale: ArrayLike<number>, bias?: ArrayLike<number>): tf.TensorInfo {
  const channels = x.shape[x.shape.length - 1];
  const filter = makeFloatOutput(backend, [1, 1, channels, 1], false);
  const biasInfo = bias ? makeFloatOutput(backend, [channels], false) : undefined;
  // Views only now: an allocation may have grown (and so detached) the heap.
  floatView(backend, filter).set(scale);
  if (biasInfo) floatView(backend, biasInfo).set(bias!);
  // The same memory read as one 1 x P image (a reshape is only a shape).
  const image = { dataId: x.dataId, dtype: x.dtype, shape: [1, 1, tf.util.sizeFromShape(x.shape) / channels, channels] };
  const out = runWasmKernel(
    backend,
    'FusedDepthwiseConv2D',
    biasInfo ? { x: image, filter, bias: biasInfo } : { x: image, filter },
    { strides: 1, pad: 'valid', dilations: 1, dataFormat: 'NHWC', dimRoundingMode: undefined, activation: 'linear' },
  );
  releaseAll(backend, biasInfo ? [filter, biasInfo] : [filter]);
  return { dataId: out.dataId, dtype: out.dtype, shape: x.shape };
}
