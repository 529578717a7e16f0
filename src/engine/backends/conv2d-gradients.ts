/**
 * Both gradients of a 2-D convolution on wasm, by our SIMD kernels (simd/kernels.wat) where they
 * serve and by the backend's XNNPACK matrix product or convolution otherwise, instead of the
 * stock scalar loops.
 *
 * - The filter gradient: our direct kernel (an implicit matrix product of x and dy, no patch
 *   matrix) wherever an image has 4+ output pixels; otherwise one XNNPACK matrix product of the
 *   (transposed) patch matrix of the input with the output gradient, or one XNNPACK convolution of
 *   the input (batch moved to the channel axis) with the output gradient as a filter, whichever
 *   measured faster for the shape.
 * - The input gradient is the "full" correlation of the output gradient with the spatially flipped
 *   filter whose in/out channel axes are swapped: at stride 1 by our direct kernel; otherwise by a
 *   matrix product and a scatter-add, or one XNNPACK correlation per output phase with the
 *   matching taps of the filter.
 *
 * Only NHWC with dilation 1 in the forward pass goes the fast way (what tfjs-layers produces);
 * anything else is handed to the stock kernel or reported clearly.
 */
import * as tf from '@tensorflow/tfjs';
import {
  WasmBackendView,
  asWasmBackend,
  floatView,
  heapOffset,
  makeFloatOutput,
  releaseAll,
  runWasmKernel,
} from './wasm-heap';
import { convGeometry, SimdKernels, simdKernels } from './simd/simdKernels';

type PadAttr = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** How a gradient is computed: XNNPACK matrix product, or XNNPACK convolution. */
export type GradientRoute = 'matmul' | 'conv';

/**
 * The filter gradient has a third route: our SIMD kernel's implicit matrix product straight from
 * x and dy (no patch matrix, nothing packed), for the shapes it serves (directFilterGradientFits).
 */
export type FilterGradientRoute = GradientRoute | 'direct';

/**
 * The input gradient's third route: our SIMD kernel's correlation of padded dy with the filter,
 * for stride-1 layers (directInputGradientFits).
 */
export type InputGradientRoute = GradientRoute | 'direct';

/** Routes forced for every shape (tests run each case every way); unset: chosen per shape. */
const routes: { filter?: FilterGradientRoute; input?: InputGradientRoute } = {};

export function forceConvGradientRoutes(forced: { filter?: FilterGradientRoute; input?: InputGradientRoute }): void {
  routes.filter = forced.filter;
  routes.input = forced.input;
}

/**
 * The input-gradient route for a shape. `columnsInWasm`: our wasm kernels module is loaded. With
 * it, stride-1 layers take the direct kernel (directInputGradientFits); the rest choose between
 * the matrix product with a scatter-add (inputGradientByMatMul; the scatter-add in the wasm
 * kernels module, else a JS loop) and the XNNPACK convolution.
 *
 * Those two were measured both ways, interleaved, on a grid (batch 32 and 4; 2-56 pixel rows; 16-640 channels;
 * 3x3, stride 1 and 2), without reading the result back:
 * - scattered in wasm, the product wins 1.16-2.6x on every strided layer (the convolution route
 *   runs one small convolution per stride phase, each with only ci output channels); at stride 1
 *   it ties over at most 1,568 pixels where ci * co >= 4096, and loses 5-27% over more pixels;
 * - scattered in JS, the product wins 1.2-12x for multi-tap filters over at most 32 output pixels,
 *   and 1.2-1.9x over at most 128 with ci*co >= 4096; beyond that the scatter-add costs more than
 *   the convolution's filter rearrangement, up to 2-9x more on large activations.
 * The columns are kh*kw times dx: above 16 MB of them the convolution route is kept, as for the
 * filter gradient's patches.
 */
export function inputGradientRoute(info: tf.backend_util.Conv2DInfo, columnsInWasm: boolean): InputGradientRoute {
  if (columnsInWasm && directInputGradientFits(info)) return 'direct';
  return columnInputGradientRoute(info, columnsInWasm);
}

/**
 * Where the direct input gradient serves: stride 1, forward padding within the filter, and at
 * least 4 input pixels in the batch (its block of 4 pixels, consecutive across rows and images).
 *
 * Measured interleaved against both other routes, with a new filter tensor each call (as in
 * training): 17-22 G multiply-adds/s, faster than the better of the two on every stride-1 layer
 * tried but one: the reference net's 3x3 layers at batch 32 (14x14x32: 3.25 -> 2.67 ms; 7x7x64:
 * 3.44 -> 2.54), RepVGG-A0 x0.5's (8x8x48: 2.34 -> 1.91; 4x4x96: 2.55 -> 1.90; 2x2x192: 2.53 ->
 * 2.30), 56x56 and 28x28 layers at batch 4 (3.66 -> 3.01, 6.35 -> 5.31) and 1x1 expansions
 * (MobileNetV2's 24->144 on 56x56: 2.73 -> 2.14). The exception: its 144->24 projection, 2.46 by
 * the convolution against 2.1-2.8 ms (the runs disagreed), left with the rest for simplicity.
 * At stride 2 the product route stays (one kernel per phase would be needed).
 */
export function directInputGradientFits(info: tf.backend_util.Conv2DInfo): boolean {
  return info.strideHeight === 1 && info.strideWidth === 1 && info.batchSize * info.inHeight * info.inWidth >= 4 && stride1InputGradientPadding(info) !== undefined;
}

/** The route among the matrix product with a scatter-add and the XNNPACK convolution. */
function columnInputGradientRoute(info: tf.backend_util.Conv2DInfo, columnsInWasm: boolean): GradientRoute {
  const pixels = info.batchSize * info.outHeight * info.outWidth;
  const taps = info.filterHeight * info.filterWidth;
  if (taps === 1 || taps * info.inChannels * pixels > MAX_PATCH_VALUES) return 'conv';
  const wide = info.inChannels * info.outChannels >= 4096;
  if (columnsInWasm) {
    const strided = info.strideHeight > 1 || info.strideWidth > 1;
    return strided || (pixels <= 1568 && wide) ? 'matmul' : 'conv';
  }
  return pixels <= 32 || (pixels <= 128 && wide) ? 'matmul' : 'conv';
}

/**
 * The filter-gradient route for a shape. `patchesInWasm`: our wasm kernels module is loaded; then
 * images with 4+ output pixels take its direct kernel (directFilterGradientFits). Among the other
 * two, the matrix product gathers a patch matrix kh*kw times the input (in that module, else in a
 * JS loop, ~3x slower on short rows); the convolution packs dy as its filter. Those two were
 * measured both ways, interleaved, on a grid (batch 32 and 4; 2-56 pixel rows; 16-640 channels;
 * stride 1 and 2), timing the kernel without reading its result back:
 * - gathered in wasm, the product wins 1.1-2.6x nearly everywhere (the XNNPACK product runs at
 *   ~17 G multiply-adds/s, the convolution with dy as its filter at 5-11 G); the convolution wins
 *   only on small narrowing layers (co < ci over at most 1,568 pixels), by up to 0.15 ms;
 * - gathered in JS, the product wins 1.4-13x for 1x1 filters and for the first layer (few input
 *   channels), and for multi-tap filters where the layer widens (co > ci) over many pixels,
 *   P * co / ci >= 3000 (1.2-2.6x); where ci >= co or the pixels are few the convolution wins by
 *   up to 5x.
 */
export function filterGradientRoute(info: tf.backend_util.Conv2DInfo, patchesInWasm: boolean): FilterGradientRoute {
  if (patchesInWasm && directFilterGradientFits(info)) return 'direct';
  return patchFilterGradientRoute(info, patchesInWasm);
}

/**
 * Where the direct kernel serves: at least 4 output pixels per image. With one pixel per image (a
 * 2x2 input at stride 2) its per-image bookkeeping dominated: 3.1-3.3 ms against 2.3-2.6 by the
 * product, for RepVGG-A0's 3x3 192->640 layer at batch 32; from 2x2 outputs on it tied or won.
 * Its blocks are 4 input by 8 output channels; other widths are padded with zero channels.
 *
 * Measured against the product route with a fresh dy each call (XNNPACK then packs it, as in
 * training), 3x3 layers of the reference net and RepVGG-A0 x0.5 at batch 32: 1.3-1.6x faster
 * (16.6-20.2 G multiply-adds/s; the reference net's five: 17.6 -> 11.6 ms); 1x1 layers 1.2-3.2x
 * (MobileNetV2's 24->144 expansion on 56x56 at batch 4: 8.1 -> 3.3 ms); a 3x3 64->64 layer on
 * 56x56 at batch 4: 33.1 -> 31.9 ms. At batch 4 on 112x112 images, passing row bands: 3x3 48->48
 * 60.7 ms against 79.5 by the product and 130.5 by the convolution (the route it replaced there),
 * 3x3 64->64 109.3 against 128.2 and 216.1, 1x1 16->96 5.7 against 20.8. With the input padded to 4 channels, first layers too:
 * 1 -> 16 channels on 28x28 at batch 32 1.64 -> 1.12 ms, MobileNetV2-224's 3 -> 32 at batch 4
 * 13.1 -> 6.9 ms, RepVGG-A0-224's 3 -> 48 27.6 -> 9.2 ms.
 */
export function directFilterGradientFits(info: tf.backend_util.Conv2DInfo): boolean {
  return info.outHeight * info.outWidth >= 4;
}

/** The route among those that build a patch matrix or convolve (see filterGradientRoute). */
function patchFilterGradientRoute(info: tf.backend_util.Conv2DInfo, patchesInWasm: boolean): GradientRoute {
  if (info.filterHeight * info.filterWidth === 1 || info.inChannels < 8) return 'matmul';
  const pixels = info.batchSize * info.outHeight * info.outWidth;
  // The patch matrix is kh*kw times the input: on large activations (a 224x224 model's early
  // layers) it would be the largest allocation of the step, and the wasm heap is what limits
  // those models' batch. So it is gathered a chunk of images at a time, at most 16 MB; where one
  // image's patches exceed that, the convolution route is kept.
  const imagePatchValues = info.filterHeight * info.filterWidth * info.inChannels * info.outHeight * info.outWidth;
  if (imagePatchValues > MAX_PATCH_VALUES) return 'conv';
  if (patchesInWasm) return info.outChannels < info.inChannels && pixels <= 1568 ? 'conv' : 'matmul';
  return info.outChannels > info.inChannels && (pixels * info.outChannels) / info.inChannels >= 3000 ? 'matmul' : 'conv';
}

/** 16 MB of float32 patches: see filterGradientRoute. */
const MAX_PATCH_VALUES = 4 * 1024 * 1024;

export interface Conv2DAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  /** The forward kernels' attribute; the gradients are registered for dilation 1 only. */
  dilations?: number | [number, number];
}

/** The shape of an NHWC convolution (the forward kernels and both gradients use it). */
export function forwardConvInfo(
  inputShape: number[],
  filterShape: number[],
  attrs: Conv2DAttrs,
): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('wasm conv kernels support only NHWC (channelsLast) tensors');
  }
  return tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * dW[ky,kx,ci,co] = sum over n,oy,ox of xPadded[n, oy*s+ky, ox*s+kx, ci] * dy[n,oy,ox,co]:
 * one matrix product patches^T [kh*kw*ci, P] x dy [P, co] with P = n*oh*ow, whose result is
 * already laid out as [kh, kw, ci, co]. The transposed patch matrix is gathered by the wasm
 * kernels module straight from x where ci is a multiple of 4, else (by that module, or in JS)
 * from x moved to [ci, n, h, w], where every patch row is a strided walk along one image row.
 */
export function filterGradientByMatMul(backend: WasmBackendView, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pixels = batchSize * outHeight * outWidth;
  const rows = kh * kw * inChannels;

  const dyAsMatrix = asMatrix(dy, pixels, outChannels);
  if (kh * kw === 1 && sh === 1 && sw === 1 && outHeight === inHeight && outWidth === inWidth) {
    // A pointwise layer's patch matrix is x by channel itself (MobileNets' expand and project
    // layers): no gather.
    const xByChannel = runWasmKernel(backend, 'Transpose', { x }, { perm: [3, 0, 1, 2] });
    const product = matMul(backend, asMatrix(xByChannel, rows, pixels), dyAsMatrix);
    releaseAll(backend, [xByChannel]);
    return { dataId: product.dataId, shape: [kh, kw, inChannels, outChannels], dtype: product.dtype };
  }
  const kernels = simdKernels(backend);
  // The SIMD gather reads x in place, four channels at a time; otherwise x is first moved to
  // [ci, n, h, w], where every patch row is a walk along one image row.
  const inPlace = kernels !== undefined && inChannels % 4 === 0;
  const xByChannel = inPlace ? undefined : runWasmKernel(backend, 'Transpose', { x }, { perm: [3, 0, 1, 2] });
  // Large activations are gathered a few images at a time, so that the patch matrix stays within
  // MAX_PATCH_VALUES; each chunk's product is added to the first one's, in chunk order.
  const imagePixels = outHeight * outWidth;
  const imagesPerChunk = Math.max(1, Math.min(batchSize, Math.floor(MAX_PATCH_VALUES / (rows * imagePixels))));
  let result: tf.TensorInfo | undefined;
  for (let first = 0; first < batchSize; first += imagesPerChunk) {
    const images = Math.min(imagesPerChunk, batchSize - first);
    const chunkPixels = images * imagePixels;
    const patchesT = makeFloatOutput(backend, [1, rows, chunkPixels], false);
    if (kernels && !xByChannel) {
      // x in place, four channels per load: on the reference net's layers at batch 32 the
      // transpose of x and the row gather took 0.6-1.4 ms per layer (rows of 4-14 values), this
      // 0.2-0.7 ms (4.5 ms -> 1.8 ms over its five layers).
      kernels.channelsLastPatches(heapOffset(backend, x.dataId), heapOffset(backend, patchesT.dataId), first, images, ...convGeometry(info));
    } else if (kernels && xByChannel) {
      // The gather in wasm: the JS loop spent ~5 ns per value on its short rows (a 3x3 32->32
      // layer on 14x14 at batch 32: 9 ms of gather against 3.4 ms of matrix product).
      kernels.transposedPatches(heapOffset(backend, xByChannel.dataId), heapOffset(backend, patchesT.dataId), first, images, batchSize, ...convGeometry(info));
    } else gatherTransposedPatches(floatView(backend, xByChannel!), floatView(backend, patchesT), info, first, images);
    let dyRows = dyAsMatrix;
    if (images < batchSize) {
      dyRows = makeFloatOutput(backend, [1, chunkPixels, outChannels], false);
      const from = first * imagePixels * outChannels;
      floatView(backend, dyRows).set(floatView(backend, dy).subarray(from, from + chunkPixels * outChannels));
    }
    const product = matMul(backend, patchesT, dyRows);
    releaseAll(backend, dyRows === dyAsMatrix ? [patchesT] : [patchesT, dyRows]);
    if (!result) {
      result = product;
    } else {
      const sum = floatView(backend, result);
      const part = floatView(backend, product);
      for (let i = 0; i < sum.length; i++) sum[i] += part[i];
      releaseAll(backend, [product]);
    }
  }
  if (xByChannel) releaseAll(backend, [xByChannel]);
  // [1, kh*kw*ci, co] is [kh, kw, ci, co] in memory: hand it out reshaped, like the Reshape kernel.
  return { dataId: result!.dataId, shape: [kh, kw, inChannels, outChannels], dtype: result!.dtype };
}

/**
 * The plain-JS gather of filterGradientByMatMul's transposed patch matrix over images
 * first .. first + images - 1 (see transposedPatches in kernels.wat).
 */
function gatherTransposedPatches(source: Float32Array, target: Float32Array, info: tf.backend_util.Conv2DInfo, first: number, images: number): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const pixels = images * outHeight * outWidth;
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      // Output columns whose input column ix = ox*sw - left + kx lies inside the image.
      const oxFirst = Math.max(0, Math.ceil((left - kx) / sw));
      const oxEnd = Math.min(outWidth, Math.floor((inWidth - 1 + left - kx) / sw) + 1);
      for (let c = 0; c < inChannels; c++) {
        let to = ((ky * kw + kx) * inChannels + c) * pixels;
        for (let n = first; n < first + images; n++) {
          const imageBase = (c * batchSize + n) * inHeight * inWidth;
          for (let oy = 0; oy < outHeight; oy++, to += outWidth) {
            const iy = oy * sh - top + ky;
            if (iy < 0 || iy >= inHeight || oxEnd <= oxFirst) {
              target.fill(0, to, to + outWidth);
              continue;
            }
            if (oxFirst > 0) target.fill(0, to, to + oxFirst);
            if (oxEnd < outWidth) target.fill(0, to + oxEnd, to + outWidth);
            const rowBase = imageBase + iy * inWidth - left + kx;
            // A plain loop: rows are short (7-32 values), and subarray() per row costs more.
            for (let ox = oxFirst; ox < oxEnd; ox++) target[to + ox] = source[rowBase + ox * sw];
          }
        }
      }
    }
  }
}

/**
 * The same filter gradient as one XNNPACK convolution: correlate the input (batch moved to the
 * channel axis) with dy used as a filter dilated by the stride: "batch" = ci, "channels" = n, and
 * the output has the filter's spatial size. Rows the forward conv never reached are padded away
 * or sliced off.
 */
export function filterGradientByConv(backend: WasmBackendView, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inChannels, outChannels } = info;
  const { top, left } = info.padInfo;
  // Rows needed below the input so that the correlation yields at least kh output rows.
  const bottom = Math.max(0, kh - 1 + (info.outHeight - 1) * sh - (info.inHeight - 1) - top);
  const right = Math.max(0, kw - 1 + (info.outWidth - 1) * sw - (info.inWidth - 1) - left);
  const xByChannel = runWasmKernel(backend, 'Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyAsFilter = runWasmKernel(backend, 'Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const correlation = runWasmKernel(
    backend,
    'Conv2D',
    { x: xByChannel, filter: dyAsFilter },
    { strides: 1, dilations: [sh, sw], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined },
  );
  // correlation: [ci, rows >= kh, cols >= kw, co]; keep the first kh x kw and move ci inwards.
  const out = makeFloatOutput(backend, [kh, kw, inChannels, outChannels], false);
  const source = floatView(backend, correlation);
  const target = floatView(backend, out);
  const [, rows, cols] = correlation.shape;
  for (let ci = 0; ci < inChannels; ci++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const from = ((ci * rows + ky) * cols + kx) * outChannels;
        const to = ((ky * kw + kx) * inChannels + ci) * outChannels;
        target.set(source.subarray(from, from + outChannels), to);
      }
    }
  }
  releaseAll(backend, [xByChannel, dyAsFilter, correlation]);
  return out;
}

function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as Conv2DAttrs & { filterShape: number[] };
  const info = forwardConvInfo(x.shape, attrs.filterShape, attrs);
  const kernels = simdKernels(backend);
  let route = routes.filter ?? filterGradientRoute(info, kernels !== undefined);
  // Forced onto a shape it does not serve, the direct route yields to the chosen one of the others.
  if (route === 'direct' && !(kernels && directFilterGradientFits(info))) route = patchFilterGradientRoute(info, kernels !== undefined);
  if (route === 'direct') return directFilterGradient(backend, kernels!, x, dy, info);
  return route === 'matmul' ? filterGradientByMatMul(backend, x, dy, info) : filterGradientByConv(backend, x, dy, info);
}

/**
 * The filter gradient by our SIMD kernel, reading x and dy in place (directFilterGradient in
 * kernels.wat). Images go through it a pass at a time, enough for ~256 output pixels but at most
 * 512 KB of x and dy (a band of rows where one image is larger), so that a pass stays in a near
 * cache while every tap and channel block walks it; the pass size depends on the shape only, so
 * sums are reproducible. Input channels are
 * padded with zeros to a multiple of 4 and output channels to a multiple of 8 where needed (the
 * kernel's block); the padded rows and columns of the result are dropped.
 */
function directFilterGradient(backend: WasmBackendView, kernels: SimdKernels, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inChannels, outChannels } = info;
  const paddedIn = Math.ceil(inChannels / 4) * 4;
  const paddedOut = Math.ceil(outChannels / 8) * 8;
  const xPadded = paddedIn === inChannels ? x : zeroChannels(backend, x, paddedIn - inChannels);
  const dyPadded = paddedOut === outChannels ? dy : zeroChannels(backend, dy, paddedOut - outChannels);
  const { outHeight } = info;
  const imagePixels = outHeight * info.outWidth;
  const imageBytes = 4 * (info.inHeight * info.inWidth * paddedIn + imagePixels * paddedOut);
  let imagesPerPass = Math.min(info.batchSize, Math.ceil(256 / imagePixels));
  while (imagesPerPass > 1 && imagesPerPass * imageBytes > PASS_BYTES) imagesPerPass--;
  const dW = makeFloatOutput(backend, [kh, kw, paddedIn, paddedOut], true);
  const geometry = convGeometry(info);
  geometry[0] = paddedIn;
  const [xAt, dyAt, dWAt] = [xPadded, dyPadded, dW].map((t) => heapOffset(backend, t.dataId));
  if (imageBytes <= PASS_BYTES) {
    kernels.directFilterGradient(xAt, dyAt, dWAt, info.batchSize, imagesPerPass, paddedOut, ...geometry, 0, outHeight);
  } else {
    // An image larger than a pass goes a band of output rows at a time (the band's x rows, with
    // the filter's halo, and dy rows within PASS_BYTES): whole 112x112 images streamed every tap
    // and channel block from memory, 1.2-1.3x slower than the product route.
    const rowBytes = 4 * (info.strideHeight * info.inWidth * paddedIn + info.outWidth * paddedOut);
    const rowsPerBand = Math.max(1, Math.floor(PASS_BYTES / rowBytes));
    const xImageBytes = 4 * info.inHeight * info.inWidth * paddedIn;
    const dyImageBytes = 4 * imagePixels * paddedOut;
    for (let b = 0; b < info.batchSize; b++) {
      for (let first = 0; first < outHeight; first += rowsPerBand) {
        const end = Math.min(outHeight, first + rowsPerBand);
        kernels.directFilterGradient(xAt + b * xImageBytes, dyAt + b * dyImageBytes, dWAt, 1, 1, paddedOut, ...geometry, first, end);
      }
    }
  }
  const padding = [xPadded, dyPadded].filter((t) => t !== x && t !== dy);
  releaseAll(backend, padding);
  if (paddedIn === inChannels && paddedOut === outChannels) return dW;
  const out = runWasmKernel(backend, 'Slice', { x: dW }, { begin: [0, 0, 0, 0], size: [kh, kw, inChannels, outChannels] });
  releaseAll(backend, [dW]);
  return out;
}

/** The most x and dy bytes a pass of the direct filter gradient walks (to stay in L2). */
const PASS_BYTES = 512 * 1024;

/** `data` (NHWC) with `extra` zero channels appended. */
function zeroChannels(backend: WasmBackendView, data: tf.TensorInfo, extra: number): tf.TensorInfo {
  return runWasmKernel(backend, 'PadV2', { x: data }, { paddings: [[0, 0], [0, 0], [0, 0], [0, extra]], constantValue: 0 });
}

/**
 * Builds the filter of the transposed convolution: flipped in space, in/out channels swapped:
 * [kh,kw,ci,co] -> [kh,kw,co,ci] with (ky,kx) -> (kh-1-ky, kw-1-kx).
 */
function flippedTransposedFilter(backend: WasmBackendView, filter: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = filter.shape;
  const out = makeFloatOutput(backend, [kh, kw, co, ci], false);
  const source = floatView(backend, filter);
  const target = floatView(backend, out);
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const from = (ky * kw + kx) * ci * co;
      const to = ((kh - 1 - ky) * kw + (kw - 1 - kx)) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) target[to + o * ci + i] = source[from + i * co + o];
      }
    }
  }
  return out;
}

/**
 * The input gradient of a strided conv as stride_h * stride_w small stride-1 convolutions, one per
 * output phase (iy mod stride, ix mod stride), instead of one conv over dy spread out with zeros
 * (which wastes 3/4 of the multiply-adds at stride 2).
 *
 * In one dimension: dx[i] = sum over j of dy[q - j] * W[r + s*j], where r = (i + padTop) mod s and
 * q = (i + padTop - r) / s; that is a correlation of dy with the flipped sub-filter W[r + s*j].
 */
function stridedConv2DBackpropInput(
  backend: WasmBackendView,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const dx = makeFloatOutput(backend, [batchSize, inHeight, inWidth, inChannels], true);
  for (let ry = 0; ry < sh; ry++) {
    for (let rx = 0; rx < sw; rx++) {
      const tapsY = ry < kh ? Math.ceil((kh - ry) / sh) : 0;
      const tapsX = rx < kw ? Math.ceil((kw - rx) / sw) : 0;
      // dy rows q whose phase output lands inside dx (rows iy = q*sh + ry - top).
      const qyFirst = Math.ceil((top - ry) / sh);
      const qyLast = Math.floor((inHeight - 1 + top - ry) / sh);
      const qxFirst = Math.ceil((left - rx) / sw);
      const qxLast = Math.floor((inWidth - 1 + left - rx) / sw);
      if (tapsY === 0 || tapsX === 0 || qyLast < qyFirst || qxLast < qxFirst) continue; // stays zero
      const subFilter = makeFloatOutput(backend, [tapsY, tapsX, outChannels, inChannels], false);
      const weights = floatView(backend, filter);
      const sub = floatView(backend, subFilter);
      for (let a = 0; a < tapsY; a++) {
        for (let b = 0; b < tapsX; b++) {
          const from = ((ry + sh * (tapsY - 1 - a)) * kw + (rx + sw * (tapsX - 1 - b))) * inChannels * outChannels;
          const to = (a * tapsX + b) * outChannels * inChannels;
          for (let i = 0; i < inChannels; i++) {
            for (let o = 0; o < outChannels; o++) sub[to + o * inChannels + i] = weights[from + i * outChannels + o];
          }
        }
      }
      const bottom = Math.max(0, qyLast - (outHeight - 1));
      const right = Math.max(0, qxLast - (outWidth - 1));
      const phase = runWasmKernel(
        backend,
        'Conv2D',
        { x: dy, filter: subFilter },
        { strides: 1, dilations: 1, pad: [[0, 0], [tapsY - 1, bottom], [tapsX - 1, right], [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined },
      );
      // phase row t holds q = t; scatter rows qyFirst..qyLast into dx rows q*sh + ry - top.
      const phaseRows = phase.shape[1];
      const phaseCols = phase.shape[2];
      const source = floatView(backend, phase);
      const target = floatView(backend, dx);
      for (let n = 0; n < batchSize; n++) {
        for (let qy = qyFirst; qy <= qyLast; qy++) {
          const iy = qy * sh + ry - top;
          for (let qx = qxFirst; qx <= qxLast; qx++) {
            const ix = qx * sw + rx - left;
            const from = ((n * phaseRows + qy) * phaseCols + qx) * inChannels;
            const to = ((n * inHeight + iy) * inWidth + ix) * inChannels;
            for (let c = 0; c < inChannels; c++) target[to + c] = source[from + c];
          }
        }
      }
      releaseAll(backend, [subFilter, phase]);
    }
  }
  return dx;
}

/**
 * The input gradient as one XNNPACK matrix product and a scatter-add (col2im):
 * columns[P, kh*kw*ci] = dy [P, co] x W^T [co, kh*kw*ci] with P = n*oh*ow (the two helpers
 * below differ in which operand XNNPACK packs), then each pixel's row added into the input
 * positions its taps read (by the wasm kernels module, else in JS). The convolution route
 * instead rearranges the whole filter and convolves once per stride phase with few output
 * channels, which costs most where the layer is strided or has few pixels and many channels (late
 * stages): a 3x3 96->640 stride-2 layer on 2x2 inputs took 9.3 ms that way against 1.6 ms for its
 * forward pass.
 */
export function inputGradientByMatMul(backend: WasmBackendView, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const pixels = batchSize * outHeight * outWidth;
  const columns = info.filterHeight * info.filterWidth * inChannels;
  const byPixel = packDyRatherThanFilter(pixels, columns, outChannels)
    ? columnsByFilterTimesDyT(backend, dy, filter, pixels, columns, outChannels)
    : columnsByDyTimesFilterT(backend, dy, filter, pixels, columns, outChannels);
  const dx = makeFloatOutput(backend, [batchSize, inHeight, inWidth, inChannels], true);
  const kernels = simdKernels(backend);
  if (kernels) {
    kernels.columnsToImage(heapOffset(backend, byPixel.dataId), heapOffset(backend, dx.dataId), batchSize, ...convGeometry(info));
  } else addColumnsToImage(floatView(backend, byPixel), floatView(backend, dx), info);
  releaseAll(backend, [byPixel]);
  return dx;
}

/**
 * Which operand of the input gradient's product XNNPACK should pack (it packs its right operand on
 * every call). dy x W^T packs the filter (co x kh*kw*ci values); (W x dy^T)^T packs dy (co x P)
 * and transposes the product (kh*kw*ci x P) back. Transposing a right operand and packing it cost
 * about 3.6 times as much per value as transposing the product (~1 + 2.6 ns against ~1 ns per
 * value, measured), so dy is packed where 3.6 * co * (columns - P) > columns * P.
 *
 * The former rule packed dy wherever P < columns. Measured in training steps, interleaved in one
 * process (min of 12 rounds): RepVGG-A0 x0.5 at batch 32 went from 100.0 to 97.8 ms per step
 * (its 96-channel stage over 512 pixels: 2.9 ms per layer instead of 3.4, in fresh processes),
 * the reference net from 54.2 to 53.1 ms. Both rules pack dy for the late layers of small
 * batches (P = 4-64 against 288-2304 columns), where that is 2-14x faster. Over a grid of 258
 * shapes in one long process the two forms' times on large layers swung up to 2x between runs,
 * either way: the heap's layout, not the shape, decided those.
 */
function packDyRatherThanFilter(pixels: number, columns: number, outChannels: number): boolean {
  return 3.6 * outChannels * (columns - pixels) > columns * pixels;
}

/** `data` read as a [rows, columns] matrix (a view: no copy). */
function asMatrix(data: tf.TensorInfo, rows: number, columns: number): tf.TensorInfo {
  return { dataId: data.dataId, dtype: data.dtype, shape: [1, rows, columns] };
}

/** a [m, k] x b [k, n] by XNNPACK (which packs b on every call). */
function matMul(backend: WasmBackendView, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  return runWasmKernel(backend, 'BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
}

/** The transpose of `data` read as a [rows, columns] matrix. */
function transposed(backend: WasmBackendView, data: tf.TensorInfo, rows: number, columns: number): tf.TensorInfo {
  return runWasmKernel(backend, 'Transpose', { x: { dataId: data.dataId, dtype: data.dtype, shape: [rows, columns] } }, { perm: [1, 0] });
}

/**
 * columns [P, kh*kw*ci] = dy [P, co] x W^T [co, kh*kw*ci], packing the filter (see
 * packDyRatherThanFilter).
 */
function columnsByDyTimesFilterT(backend: WasmBackendView, dy: tf.TensorInfo, filter: tf.TensorInfo, pixels: number, columns: number, outChannels: number): tf.TensorInfo {
  const filterT = transposed(backend, filter, columns, outChannels);
  const byPixel = matMul(backend, asMatrix(dy, pixels, outChannels), asMatrix(filterT, outChannels, columns));
  releaseAll(backend, [filterT]);
  return byPixel;
}

/**
 * The same columns as (W [kh*kw*ci, co] x dy^T [co, P])^T, for layers with far fewer pixels than
 * filter rows (late stages: a 3x3 96->640 layer over 32 pixels spent 3.1 ms transposing and
 * packing its 553K-value filter for a product of 17.7M multiply-adds); only dy^T is packed, and
 * the small product is transposed back.
 */
function columnsByFilterTimesDyT(backend: WasmBackendView, dy: tf.TensorInfo, filter: tf.TensorInfo, pixels: number, columns: number, outChannels: number): tf.TensorInfo {
  const dyT = transposed(backend, dy, pixels, outChannels);
  const product = matMul(backend, asMatrix(filter, columns, outChannels), asMatrix(dyT, outChannels, pixels));
  const byPixel = transposed(backend, product, columns, pixels);
  releaseAll(backend, [dyT, product]);
  return byPixel;
}

/** The plain-JS scatter-add of inputGradientByMatMul (see columnsToImage in kernels.wat). */
function addColumnsToImage(source: Float32Array, target: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const columns = kh * kw * inChannels;
  let row = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, row += columns) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - top + ky;
          if (iy < 0 || iy >= inHeight) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - left + kx;
            if (ix < 0 || ix >= inWidth) continue;
            const from = row + (ky * kw + kx) * inChannels;
            const to = ((n * inHeight + iy) * inWidth + ix) * inChannels;
            for (let c = 0; c < inChannels; c++) target[to + c] += source[from + c];
          }
        }
      }
    }
  }
}

/**
 * Padding of dy (rows above and below, columns left and right) that turns the input gradient of a
 * stride-1 convolution into a valid correlation over exactly the input's size; undefined where the
 * forward padding exceeds the filter (a negative pad: the stock kernel serves that).
 */
function stride1InputGradientPadding(info: tf.backend_util.Conv2DInfo): [number, number, number, number] | undefined {
  const { filterHeight: kh, filterWidth: kw } = info;
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = info.inHeight + info.padInfo.top - (info.outHeight - 1) * info.strideHeight - 1;
  const right = info.inWidth + info.padInfo.left - (info.outWidth - 1) * info.strideWidth - 1;
  return Math.min(top, left, bottom, right) < 0 ? undefined : [top, bottom, left, right];
}

/**
 * The input gradient of a stride-1 convolution by our SIMD kernel (directCorrelation in
 * kernels.wat, taps flipped): dy padded around, the filter with its channel axes swapped (and input channels
 * padded to a multiple of 8), no column matrix and nothing packed; the padded channels are
 * dropped from the result.
 */
function directInputGradient(backend: WasmBackendView, kernels: SimdKernels, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outChannels, filterHeight: kh, filterWidth: kw } = info;
  const [top, bottom, left, right] = stride1InputGradientPadding(info)!;
  const paddedIn = Math.ceil(inChannels / 8) * 8;
  const dyPadded = runWasmKernel(backend, 'PadV2', { x: dy }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 });
  // [kh, kw, ci, co] -> [kh, kw, co, ci (padded with zeros)] by the backend's transpose: a JS loop
  // over RepVGG-A0 x0.5's filters took ~5 ms per training step.
  const filterByTap = { dataId: filter.dataId, dtype: filter.dtype, shape: [kh * kw, inChannels, outChannels] };
  let swapped = runWasmKernel(backend, 'Transpose', { x: filterByTap }, { perm: [0, 2, 1] });
  if (paddedIn !== inChannels) {
    const narrow = swapped;
    swapped = runWasmKernel(backend, 'PadV2', { x: narrow }, { paddings: [[0, 0], [0, 0], [0, paddedIn - inChannels]], constantValue: 0 });
    releaseAll(backend, [narrow]);
  }
  const dx = makeFloatOutput(backend, [batchSize, inHeight, inWidth, paddedIn], false);
  const [paddedRows, paddedWidth] = [inHeight + kh - 1, inWidth + kw - 1];
  kernels.directCorrelation(heapOffset(backend, dyPadded.dataId), heapOffset(backend, swapped.dataId), heapOffset(backend, dx.dataId), batchSize, outChannels, paddedIn, inHeight, inWidth, kh, kw, paddedRows, paddedWidth, 1, 1, 1, 0);
  releaseAll(backend, [dyPadded, swapped]);
  if (paddedIn === inChannels) return dx;
  const out = runWasmKernel(backend, 'Slice', { x: dx }, { begin: [0, 0, 0, 0], size: [batchSize, inHeight, inWidth, inChannels] });
  releaseAll(backend, [dx]);
  return out;
}

/** The stock wasm kernel, kept for the layouts the fast path does not cover. */
let stockConv2DBackpropInput: tf.KernelFunc | undefined;

function conv2DBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as Conv2DAttrs & { inputShape: number[] };
  const info = forwardConvInfo(attrs.inputShape, filter.shape, attrs);
  const kernels = simdKernels(backend);
  let route = routes.input ?? inputGradientRoute(info, kernels !== undefined);
  // Forced onto a shape it does not serve, the direct route yields to the chosen one of the others.
  if (route === 'direct' && !(kernels && directInputGradientFits(info))) route = columnInputGradientRoute(info, kernels !== undefined);
  if (route === 'direct') return directInputGradient(backend, kernels!, dy, filter, info);
  if (route === 'matmul') return inputGradientByMatMul(backend, dy, filter, info);
  if (info.strideHeight > 1 || info.strideWidth > 1) return stridedConv2DBackpropInput(backend, dy, filter, info);
  const padding = stride1InputGradientPadding(info);
  if (!padding) {
    // Padding larger than the kernel: rare, and the stock loop handles it.
    if (!stockConv2DBackpropInput) throw new Error('Conv2DBackpropInput: padding larger than the filter is not supported');
    return stockConv2DBackpropInput(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const [top, bottom, left, right] = padding;
  const flipped = flippedTransposedFilter(backend, filter);
  const dx = runWasmKernel(
    backend,
    'Conv2D',
    { x: dy, filter: flipped },
    { strides: 1, dilations: 1, pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined },
  );
  releaseAll(backend, [flipped]);
  return dx;
}

/** Kernel configs for wasm; the input gradient replaces the stock scalar-loop kernel. */
export function conv2DGradientKernels(): tf.KernelConfig[] {
  const stock = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stock && stock.kernelFunc !== conv2DBackpropInput) stockConv2DBackpropInput = stock.kernelFunc;
  return [
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
    { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput as tf.KernelFunc },
  ];
}
