/**
 * Add, Sub and Multiply of a float32 tensor and a per-channel vector (x[..., c] op v[c], the
 * pattern of BatchNorm's moments and of its gradient) as one XNNPACK 1x1 depthwise convolution
 * with bias over x read as a 1 x P image of C channels: x*v (Multiply), x*1 + v (Add), x*1 - v
 * (Sub), and v - x as x*(-1) + v. The stock wasm binary kernels take a generic broadcasting loop for
 * this (0.14 ms on a 32x16x16x24 activation against 0.02 ms for a same-shape op: 126 such Subs
 * were ~15% of a RepVGG-A0 half-batch step). Each output is the same single float32 rounding of
 * the same operands as the element-wise op (x*1 and x*(-1) are exact), so the results are equal
 * bit for bit (tested). Every other shape, dtype or broadcast goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { channelAffine } from './channel-affine';
import { asWasmBackend, floatView } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Op = 'Add' | 'Sub' | 'Multiply';

/** True when `v` holds one value per channel of `x` (shape [C] or [1, ..., 1, C], rank <= x's). */
function perChannelOf(x: tf.TensorInfo, v: tf.TensorInfo): boolean {
  const channels = x.shape[x.shape.length - 1];
  if (x.shape.length < 2 || v.shape.length === 0 || v.shape.length > x.shape.length || channels === 0) return false;
  return v.shape[v.shape.length - 1] === channels && v.shape.slice(0, -1).every((d) => d === 1);
}

function channelKernel(op: Op, stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const fallback = () => stock(args as Parameters<tf.KernelFunc>[0]);
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
    // x is the full tensor, v the per-channel vector; `vFirst`: the op is v op x.
    const vFirst = perChannelOf(b, a) && !perChannelOf(a, b);
    const [x, v] = vFirst ? [b, a] : [a, b];
    if (!perChannelOf(x, v) || tf.util.sizeFromShape(x.shape) === 0) return fallback();
    const backend = asWasmBackend(args.backend);
    // A copy of v (C values): the heap may move once channelAffine allocates.
    const values = Float32Array.from(floatView(backend, v));
    if (op === 'Multiply') return channelAffine(backend, x, values);
    const ones = new Float32Array(values.length).fill(1);
    if (op === 'Add') return channelAffine(backend, x, ones, values);
    // Sub: x - v as x*1 + (-v); v - x as x*(-1) + v.
    return vFirst ? channelAffine(backend, x, ones.fill(-1), values) : channelAffine(backend, x, ones, values.map((value) => -value));
  }) as tf.KernelFunc;
}

/** Add, Sub and Multiply configs wrapping the given stock kernels. */
export function channelBroadcastKernels(stock: Record<Op, tf.KernelFunc>): tf.KernelConfig[] {
  return (['Add', 'Sub', 'Multiply'] as const).map((op) => ({ kernelName: op, backendName: 'wasm', kernelFunc: channelKernel(op, stock[op]) }));
}
