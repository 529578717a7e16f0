/**
 * MaxPoolGrad on wasm. The stock 4.22 kernel returns wrong gradients (on non-square maps and on
 * multi-channel batches, e.g. 1x4x6x1 or 2x8x8x3): our cpu comparison test caught it. This loop
 * routes each output gradient to the first maximum of its window, as the cpu backend does.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, floatView, makeFloatOutput } from './wasm-heap';

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function maxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs as unknown as MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  const out = makeFloatOutput(backend, input.shape, true);
  const xs = floatView(backend, input);
  const dys = floatView(backend, dy);
  const dx = floatView(backend, out);
  const best = new Float32Array(channels);
  const bestOffset = new Int32Array(channels);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        best.fill(-Infinity);
        bestOffset.fill(-1);
        for (let ky = 0; ky < filterHeight; ky++) {
          const iy = oy * strideHeight - top + ky * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let kx = 0; kx < filterWidth; kx++) {
            const ix = ox * strideWidth - left + kx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            const base = ((b * inHeight + iy) * inWidth + ix) * channels;
            for (let c = 0; c < channels; c++) {
              if (xs[base + c] > best[c]) {
                best[c] = xs[base + c];
                bestOffset[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          if (bestOffset[c] >= 0) dx[bestOffset[c]] += dys[dyBase + c];
        }
      }
    }
  }
  return out;
}

/** Kernel config replacing the stock wasm MaxPoolGrad. */
export function maxPoolGradKernel(): tf.KernelConfig {
  return { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad as tf.KernelFunc };
}
