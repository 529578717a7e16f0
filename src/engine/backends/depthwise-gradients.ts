/**
 * Gradients of the depthwise convolution on wasm, which ships neither. dW: our SIMD kernel per
 * filter tap (channel multiplier 1); dx: our SIMD kernel at stride > 1, XNNPACK's depthwise
 * convolution with the flipped filter at stride 1 (multiplier 1, no dilation). Other layers take
 * direct loops over the heap, the innermost loop over channels, which are contiguous in NHWC.
 */
import * as tf from '@tensorflow/tfjs';
import { convGeometry, simdKernels } from './simd/simdKernels';
import { asWasmBackend, floatView, heapOffset, makeFloatOutput, releaseAll, runWasmKernel, type WasmBackendView } from './wasm-heap';

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
 * hands the flat offsets of x, dy and the filter tap to `visit`, which loops over the channels
 * (contiguous in NHWC). The loops serve the layers XNNPACK cannot take below (a channel
 * multiplier above 1, or dilation); a call per tap costs little next to their channel loops.
 */
function forEachTap(info: tf.backend_util.Conv2DInfo, visit: (xOffset: number, dyOffset: number, tapOffset: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ky = 0; ky < filterHeight; ky++) {
        const iy = oy * strideHeight - top + ky * dilationHeight;
        if (iy < 0 || iy >= inHeight) continue;
        const xRow = (b * inHeight + iy) * inWidth;
        const dyRow = (b * outHeight + oy) * outWidth;
        for (let kx = 0; kx < filterWidth; kx++) {
          const tap = (ky * filterWidth + kx) * outChannels;
          for (let ox = 0; ox < outWidth; ox++) {
            const ix = ox * strideWidth - left + kx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit((xRow + ix) * inChannels, (dyRow + ox) * outChannels, tap);
          }
        }
      }
    }
  }
}

/**
 * dW by our SIMD kernel (simd/kernels.wat), for a channel multiplier of 1 (every MobileNet and
 * EfficientNet), any stride, padding and dilation: one call per filter tap, each summing
 * x * dy over the output positions whose input pixel is real (not padding), four channels per
 * instruction, into double accumulators. XNNPACK has no such kernel: the route before this one ran
 * its depthwise convolution with dy as a filter as large as the feature map (plus two transposes),
 * about 10x the forward pass's time (bench/results/throughput.md, MobileNetV2 at 224x224).
 * Undefined where it does not apply (then the JS loops below serve).
 */
function filterGradientBySimd(backend: WasmBackendView, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | undefined {
  const kernels = simdKernels(backend);
  if (!kernels || info.outChannels !== info.inChannels) return undefined;
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const taps = kh * kw;
  const accumulators = makeFloatOutput(backend, [2 * taps * channels], true); // doubles
  const out = makeFloatOutput(backend, [kh, kw, channels, 1], false);
  const [xAt, dyAt, accAt, outAt] = [x, dy, accumulators, out].map((t) => heapOffset(backend, t.dataId));
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      // Input column of output column ox: ox * sw + shift; keep the ox whose column is inside the image.
      const shift = kx * dw - left;
      const firstOut = Math.max(0, Math.ceil(-shift / sw));
      const endOut = Math.min(outWidth, Math.floor((inWidth - 1 - shift) / sw) + 1);
      const tap = ky * kw + kx;
      kernels.depthwiseTapGradient(xAt, dyAt, accAt + tap * channels * 8, batchSize, inHeight, inWidth, channels, outHeight, outWidth, sh, sw, ky * dh - top, firstOut * sw + shift, firstOut, endOut - firstOut);
    }
  }
  kernels.doublesToFloats(accAt, outAt, taps * channels);
  releaseAll(backend, [accumulators]);
  return out;
}

/** dW[ky,kx,c,m] = sum of x[n, iy, ix, c] * dy[n, oy, ox, c*mult+m] over the taps. */
function depthwiseBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradientAttrs & { filterShape: number[] };
  const info = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const bySimd = filterGradientBySimd(backend, x, dy, info);
  if (bySimd) return bySimd;
  const out = makeFloatOutput(backend, attrs.filterShape, true);
  const xs = floatView(backend, x);
  const dys = floatView(backend, dy);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  // Sums in double: a float32 sum over N*H*W products would lose digits on large layers.
  const sums = new Float64Array(tf.util.sizeFromShape(attrs.filterShape));
  forEachTap(info, (xo, dyo, tap) => {
    for (let c = 0; c < channels; c++) {
      const xv = xs[xo + c];
      for (let m = 0; m < multiplier; m++) sums[tap + c * multiplier + m] += xv * dys[dyo + c * multiplier + m];
    }
  });
  floatView(backend, out).set(sums);
  return out;
}

/**
 * dx by one XNNPACK depthwise convolution, where the layer allows (channel multiplier 1, no
 * dilation: every MobileNet): the "full" correlation of dy with the spatially flipped filter; at
 * stride > 1, of dy spread out with zeros (stride - 1 zeros between values). The zeros waste
 * multiply-adds, but XNNPACK's depthwise kernel is so much faster than a JS loop over the taps
 * that the spread form still wins by far (a 112x112x96 stride-2 layer at batch 4: ~130 ms in JS).
 * Undefined where it does not apply.
 */
function inputGradientByDepthwiseConv(backend: WasmBackendView, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | undefined {
  const { batchSize, inChannels: channels, outChannels, outHeight, outWidth, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (outChannels !== channels || info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const spreadHeight = (outHeight - 1) * sh + 1;
  const spreadWidth = (outWidth - 1) * sw + 1;
  // Padding of the (spread) dy so that a valid stride-1 correlation gives exactly inHeight x inWidth.
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = info.inHeight + info.padInfo.top - spreadHeight;
  const right = info.inWidth + info.padInfo.left - spreadWidth;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return undefined;
  const flipped = makeFloatOutput(backend, filter.shape, false);
  const strided = sh > 1 || sw > 1;
  const spread = strided ? makeFloatOutput(backend, [batchSize, spreadHeight, spreadWidth, channels], true) : dy;
  // Views only now: an allocation may have grown (and so detached) the heap.
  const source = floatView(backend, filter);
  const target = floatView(backend, flipped);
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const from = (ky * kw + kx) * channels;
      target.set(source.subarray(from, from + channels), ((kh - 1 - ky) * kw + (kw - 1 - kx)) * channels);
    }
  }
  if (strided) {
    const dys = floatView(backend, dy);
    const spreadValues = floatView(backend, spread);
    for (let b = 0; b < batchSize; b++) {
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          const from = ((b * outHeight + oy) * outWidth + ox) * channels;
          spreadValues.set(dys.subarray(from, from + channels), ((b * spreadHeight + oy * sh) * spreadWidth + ox * sw) * channels);
        }
      }
    }
  }
  const dx = runWasmKernel(
    backend,
    'DepthwiseConv2dNative',
    { x: spread, filter: flipped },
    { strides: 1, dilations: 1, pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dimRoundingMode: undefined },
  );
  releaseAll(backend, strided ? [flipped, spread] : [flipped]);
  return dx;
}

/**
 * dx of a strided layer with channel multiplier 1 by our SIMD kernel (depthwiseInputGradient in
 * kernels.wat): no spread copy of dy and no multiply-adds with its zeros. MobileNetV2-224's four
 * stride-2 layers at batch 4 took 15.4 ms per step through the spread XNNPACK route (the 112x112x96
 * one 9.5 ms, where its forward pass takes 2.4). Stride 1 keeps XNNPACK's depthwise convolution,
 * which runs it at its forward speed. Undefined where it does not apply.
 */
function stridedInputGradientBySimd(backend: WasmBackendView, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | undefined {
  const strided = info.strideHeight > 1 || info.strideWidth > 1;
  if (!strided || info.outChannels !== info.inChannels || info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const kernels = simdKernels(backend);
  if (!kernels) return undefined;
  const dx = makeFloatOutput(backend, [info.batchSize, info.inHeight, info.inWidth, info.inChannels], false);
  kernels.depthwiseInputGradient(heapOffset(backend, dy.dataId), heapOffset(backend, filter.dataId), heapOffset(backend, dx.dataId), info.batchSize, ...convGeometry(info));
  return dx;
}

/** dx[n, iy, ix, c] = sum of dy[n, oy, ox, c*mult+m] * W[ky, kx, c, m] over the taps. */
function depthwiseBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradientAttrs & { inputShape: number[] };
  const info = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const bySimd = stridedInputGradientBySimd(backend, dy, filter, info);
  if (bySimd) return bySimd;
  const byConv = inputGradientByDepthwiseConv(backend, dy, filter, info);
  if (byConv) return byConv;
  const out = makeFloatOutput(backend, attrs.inputShape, true);
  const dys = floatView(backend, dy);
  const ws = floatView(backend, filter);
  const dx = floatView(backend, out);
  const channels = info.inChannels;
  const multiplier = info.outChannels / channels;
  forEachTap(info, (xo, dyo, tap) => {
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let m = 0; m < multiplier; m++) sum += dys[dyo + c * multiplier + m] * ws[tap + c * multiplier + m];
      dx[xo + c] += sum;
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
