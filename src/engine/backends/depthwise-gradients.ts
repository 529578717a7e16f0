/**
 * Gradients of the depthwise convolution on wasm, which ships neither. Depthwise layers carry few
 * multiply-adds (kh*kw per output value and channel), so direct loops over the heap are fast
 * enough; the innermost loop runs over channels, which are contiguous in NHWC.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, floatView, makeFloatOutput } from './wasm-heap';

interface DepthwiseGradientAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function depthwiseInfo(inputShape: number[], filterShape: number[], attrs: DepthwiseGradientAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Visits every (output position, filter tap) pair that reads a real (unpadded) input pixel and
 * hands the flat offsets of dy, x and the filter tap to `visit`.
 */
function forEachTap(
  info: tf.backend_util.Conv2DInfo,
  visit: (dyOffset: number, xOffset: number, tapOffset: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ky = 0; ky < filterHeight; ky++) {
        const iy = oy * strideHeight - top + ky * dilationHeight;
        if (iy < 0 || iy >= inHeight) continue;
        for (let ox = 0; ox < outWidth; ox++) {
          const dyOffset = ((b * outHeight + oy) * outWidth + ox) * outChannels;
          for (let kx = 0; kx < filterWidth; kx++) {
            const ix = ox * strideWidth - left + kx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit(dyOffset, ((b * inHeight + iy) * inWidth + ix) * inChannels, (ky * filterWidth + kx) * outChannels);
          }
        }
      }
    }
  }
}

/** dW[ky,kx,c,m] = sum of x[n, iy, ix, c] * dy[n, oy, ox, c*mult+m] over the taps. */
function depthwiseBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradientAttrs & { filterShape: number[] };
  const info = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const out = makeFloatOutput(backend, attrs.filterShape, true);
  const xs = floatView(backend, x);
  const dys = floatView(backend, dy);
  const dw = floatView(backend, out);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  forEachTap(info, (dyOffset, xOffset, tapOffset) => {
    for (let c = 0; c < channels; c++) {
      const xv = xs[xOffset + c];
      for (let m = 0; m < multiplier; m++) {
        const k = c * multiplier + m;
        dw[tapOffset + k] += xv * dys[dyOffset + k];
      }
    }
  });
  return out;
}

/** dx[n, iy, ix, c] = sum of dy[n, oy, ox, c*mult+m] * W[ky, kx, c, m] over the taps. */
function depthwiseBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradientAttrs & { inputShape: number[] };
  const info = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const out = makeFloatOutput(backend, attrs.inputShape, true);
  const dys = floatView(backend, dy);
  const ws = floatView(backend, filter);
  const dx = floatView(backend, out);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  forEachTap(info, (dyOffset, xOffset, tapOffset) => {
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let m = 0; m < multiplier; m++) {
        const k = c * multiplier + m;
        sum += dys[dyOffset + k] * ws[tapOffset + k];
      }
      dx[xOffset + c] += sum;
    }
  });
  return out;
}

/** Kernel configs for wasm (neither kernel exists there in tfjs 4.22). */
export function depthwiseGradientKernels(): tf.KernelConfig[] {
  return [
    { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: depthwiseBackpropFilter as tf.KernelFunc },
    { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: depthwiseBackpropInput as tf.KernelFunc },
  ];
}
