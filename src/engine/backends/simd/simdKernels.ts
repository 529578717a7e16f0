/**
 * Our own SIMD kernels (kernels.wat), running on the wasm backend's heap.
 *
 * tfjs-backend-wasm exports its WebAssembly.Memory (`Module.asm.memory` in its Emscripten glue);
 * the kernels module imports that memory instead of having its own, so it reads and writes tensors
 * where they live, with no copy in or out. One instance per backend instance (each worker thread
 * has its own backend and heap). The memory grows under tfjs's allocations; the instance sees the
 * same Memory object, so it never needs re-instantiating.
 */
import { KERNELS_WASM_BASE64 } from './kernelsWasm';

/**
 * A convolution's shape as the conv-gradient kernels take it: input channels, input height and
 * width, output height and width, filter height and width, strides (y, x), padding (top, left).
 */
export type ConvGeometry = [
  channels: number,
  inHeight: number,
  inWidth: number,
  outHeight: number,
  outWidth: number,
  kh: number,
  kw: number,
  strideY: number,
  strideX: number,
  top: number,
  left: number,
];

/** A layer's shape as the kernels take it. */
export function convGeometry(info: {
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padInfo: { top: number; left: number };
}): ConvGeometry {
  return [
    info.inChannels, info.inHeight, info.inWidth, info.outHeight, info.outWidth,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
  ];
}

/** The exports of kernels.wat; pointers are byte offsets into the backend's heap. */
export interface SimdKernels {
  clipGradient(x: number, dy: number, out: number, count: number, lo: number, hi: number): void;
  depthwiseTapGradient(
    x: number,
    dy: number,
    acc: number,
    batch: number,
    inHeight: number,
    inWidth: number,
    channels: number,
    outHeight: number,
    outWidth: number,
    strideY: number,
    strideX: number,
    rowOffset: number,
    firstColumn: number,
    firstOutColumn: number,
    columns: number,
  ): void;
  doublesToFloats(acc: number, out: number, count: number): void;
  /**
   * dx of a depthwise convolution with channel multiplier 1 (w: [kh, kw, channels]) straight from
   * dy, every tap that reaches a dx pixel adding its products; written, not added to.
   */
  depthwiseInputGradient(dy: number, w: number, dx: number, batch: number, ...geometry: ConvGeometry): void;
  /** accU += per-channel sums of u; with v (non-zero) accUV += of u * v; with mean (non-zero) accU += of (u - mean)^2. */
  channelSums(u: number, v: number, mean: number, pixels: number, channels: number, accU: number, accUV: number): void;
  /** out = a * u + b * v + c per channel (v = 0: a * u + c). */
  channelAffine(u: number, v: number, pixels: number, channels: number, a: number, b: number, c: number, out: number): void;
  /**
   * The transposed im2col matrix [kh*kw*channels, batch*outHeight*outWidth] of images
   * firstImage .. firstImage + batch - 1 of x moved to [channels, totalImages, h, w].
   */
  transposedPatches(x: number, out: number, firstImage: number, batch: number, totalImages: number, ...geometry: ConvGeometry): void;
  /**
   * The same matrix as transposedPatches, read from x in its own [totalImages, h, w, channels]
   * layout; channels must be a multiple of 4.
   */
  channelsLastPatches(x: number, out: number, firstImage: number, batch: number, ...geometry: ConvGeometry): void;
  /**
   * dW[ky, kx, c, o] += x[b, iy, ix, c] * dy[b, oy, ox, o] over every image and output rows
   * oyFirst .. oyEnd - 1 (the filter gradient without a patch matrix), imagesPerPass images at a
   * time; channels a multiple of 4, outChannels of 8.
   */
  directFilterGradient(x: number, dy: number, dw: number, batch: number, imagesPerPass: number, outChannels: number, ...geometryAndRows: [...ConvGeometry, oyFirst: number, oyEnd: number]): void;
  /**
   * out[b, y, x, c] = bias[c] + sum of source[b, y * strideY + ty, x * strideX + tx, m] * w[ky, kx, m, c]
   * over taps and summed channels m, with (ty, tx) = (ky, kx), or (kh - 1 - ky, kw - 1 - kx) where
   * flipTaps is 1 (bias pointer 0: no bias): a convolution of the padded source ([batch, paddedRows, paddedWidth,
   * sumChannels]) with w ([kh, kw, sumChannels, channels]); channels a multiple of 8. The forward
   * convolution, and the input gradient of a stride-1 one (dy padded, the filter's channel axes
   * swapped, taps flipped).
   */
  directCorrelation(
    source: number,
    w: number,
    out: number,
    batch: number,
    sumChannels: number,
    channels: number,
    outHeight: number,
    outWidth: number,
    kh: number,
    kw: number,
    paddedRows: number,
    paddedWidth: number,
    strideY: number,
    strideX: number,
    flipTaps: number,
    bias: number,
  ): void;
  /** dx[b, iy, ix, :] += columns[pixel, tap * channels : +channels] for every tap inside the image (col2im). */
  columnsToImage(columns: number, dx: number, batch: number, ...geometry: ConvGeometry): void;
}

/** `count` doubles at byte offset `at` of the heap (any alignment: a Float64Array view needs 8). */
export function readDoubles(heap: ArrayBuffer, at: number, count: number): Float64Array {
  if (at % 8 === 0) return new Float64Array(heap, at, count).slice();
  const view = new DataView(heap, at, count * 8);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<object, SimdKernels | null>();
let disabled = false;

/** Test seam: make `simdKernels` report the kernels as unavailable, to exercise the fallbacks. */
export function disableSimdKernels(off: boolean): void {
  disabled = off;
}

/** The heap's Memory of a wasm backend, or undefined if this tfjs build does not expose it. */
function backendMemory(backend: unknown): WebAssembly.Memory | undefined {
  const memory = (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

/**
 * The kernels bound to `backend`'s heap, or undefined where they cannot run (no exposed memory,
 * or a runtime without wasm SIMD): callers then take their plain-JS path.
 */
export function simdKernels(backend: unknown): SimdKernels | undefined {
  if (disabled) return undefined;
  const key = backend as object;
  const known = instances.get(key);
  if (known !== undefined) return known ?? undefined;
  let kernels: SimdKernels | null = null;
  const memory = backendMemory(backend);
  if (memory) {
    try {
      compiled ??= new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
      kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdKernels;
    } catch {
      kernels = null; // no SIMD in this runtime: the JS paths serve
    }
  }
  instances.set(key, kernels);
  return kernels ?? undefined;
}
