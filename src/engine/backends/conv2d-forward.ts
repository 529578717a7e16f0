/**
 * The forward 2-D convolution on wasm while a gradient is recorded: our SIMD kernel
 * (directCorrelation in simd/kernels.wat) instead of XNNPACK, for the shapes it serves.
 *
 * Why only then: tfjs-backend-wasm caches each XNNPACK convolution operator (with the filter
 * packed into its own layout) under the filter tensor's id. In inference the weights stay and the
 * cache serves every call; in training every step assigns new weight tensors, so every forward
 * convolution packs its filter and builds its operator again. Measured on RepVGG-A0 x0.5's
 * training shapes (batch 32, 32x32 inputs), one forward pass over its 16 distinct convolutions:
 * 29.3 ms with a new filter per call, 18.2 ms with the cached one. Our kernel packs nothing: on
 * the stride-1 3x3 layers it took 0.50-0.59 ms where XNNPACK took 0.66-0.93 with a new filter and
 * 0.58-0.62 cached. Inference keeps XNNPACK (its cached speed is what a deployed model gets, and
 * what `pas inspect --latency` measures).
 *
 * The sums run in XNNPACK's order (bias, then taps, then input channels, float32 multiply and add),
 * so the result is XNNPACK's bit for bit (tested): training gives the same weights either way.
 *
 * Served: NHWC, dilation 1, output channels a multiple of 8 (the kernel's register block), at least
 * 4 output pixels in the batch, no activation (under a gradient tfjs-core runs activations unfused
 * anyway) and an optional bias (added by the kernel). Anything else goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, heapOffset, makeFloatOutput, releaseAll, runWasmKernel, type WasmBackendView } from './wasm-heap';
import { forwardConvInfo, type Conv2DAttrs } from './conv2d-gradients';
import { simdKernels, type SimdKernels } from './simd/simdKernels';

/** 'auto': direct while a gradient is recorded; the others force a route for every call (tests). */
export type ForwardConvRoute = 'auto' | 'direct' | 'xnnpack';

let forcedRoute: ForwardConvRoute = 'auto';

/** Test seam: force the forward route (a shape the direct kernel does not serve still goes to XNNPACK). */
export function forceForwardConvRoute(route: ForwardConvRoute): void {
  forcedRoute = route;
}

let directCalls = 0;

/** How many forward convolutions went the direct way so far (tests check that the route is taken). */
export function directForwardConvolutions(): number {
  return directCalls;
}

/** Whether the direct kernel serves this convolution (the route aside). */
function directConvolutionFits(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.outChannels % 8 === 0 &&
    info.batchSize * info.outHeight * info.outWidth >= 4 &&
    Math.min(info.padInfo.top, info.padInfo.bottom, info.padInfo.left, info.padInfo.right) >= 0
  );
}

function recordingGradient(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/** x padded as the convolution pads it, then the kernel over it; the bias (if any) added by the kernel. */
function directConvolution(backend: WasmBackendView, kernels: SimdKernels, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { top, bottom, left, right } = info.padInfo;
  const padded = top + bottom + left + right > 0;
  const source = padded ? runWasmKernel(backend, 'PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 }) : x;
  const out = makeFloatOutput(backend, [info.batchSize, info.outHeight, info.outWidth, info.outChannels], false);
  kernels.directCorrelation(
    heapOffset(backend, source.dataId),
    heapOffset(backend, filter.dataId),
    heapOffset(backend, out.dataId),
    info.batchSize,
    info.inChannels,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.inHeight + top + bottom,
    info.inWidth + left + right,
    info.strideHeight,
    info.strideWidth,
    0,
    bias ? heapOffset(backend, bias.dataId) : 0,
  );
  if (padded) releaseAll(backend, [source]);
  directCalls++;
  return out;
}

/** The direct kernel's result, or undefined where the stock kernel should run. */
function tryDirect(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | undefined {
  if (forcedRoute === 'xnnpack' || (forcedRoute === 'auto' && !recordingGradient())) return undefined;
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = args.attrs as unknown as Conv2DAttrs & { activation?: string };
  if (!x || !filter || preluActivationWeights || (attrs.activation ?? 'linear') !== 'linear' || attrs.dataFormat === 'NCHW') return undefined;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || (bias && (bias.dtype !== 'float32' || bias.shape.length !== 1))) return undefined;
  const backend = asWasmBackend(args.backend);
  const kernels = simdKernels(backend);
  if (!kernels) return undefined;
  const info = forwardConvInfo(x.shape, filter.shape, attrs);
  if (!directConvolutionFits(info) || (bias && bias.shape[0] !== info.outChannels)) return undefined;
  return directConvolution(backend, kernels, x, filter, bias, info);
}

/** Conv2D and FusedConv2D for wasm: the direct kernel where it serves (see above), else the stock ones. */
export function forwardConvKernels(stockConv2D: tf.KernelFunc, stockFusedConv2D: tf.KernelFunc): tf.KernelConfig[] {
  return [
    { kernelName: 'Conv2D', backendName: 'wasm', kernelFunc: (args) => tryDirect(args) ?? (stockConv2D(args) as tf.TensorInfo) },
    { kernelName: 'FusedConv2D', backendName: 'wasm', kernelFunc: (args) => tryDirect(args) ?? (stockFusedConv2D(args) as tf.TensorInfo) },
  ];
}
