/**
 * The gradient of ClipByValue in one pass on wasm. tfjs computes it as
 * `where(logicalAnd(greaterEqual(x, min), lessEqual(x, max)), dy, zerosLike(dy))`: four full-size
 * kernels and two full-size bool temporaries. Keras-converted MobileNets clip every activation
 * (ReLU6 is `relu` then `clipByValue(0, 6)` in tfjs-layers), so on a 224x224 MobileNetV2 those
 * four kernels took 15% of a training step (bench/results/throughput.md). Same rule as the stock
 * gradient: dy passes where min <= x <= max (both ends included), else 0; NaN inputs pass nothing.
 *
 * The override applies only while the wasm backend is active (gradients are registered globally in
 * tfjs); other backends keep the stock gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { simdKernels } from './simd/simdKernels';
import { asWasmBackend, floatView, heapOffset, makeFloatOutput } from './wasm-heap';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** The custom kernel's name: not a tfjs kernel, so nothing else can collide with it. */
export const CLIP_GRADIENT_KERNEL = 'PasClipByValueGrad';

function clipGradient(args: KernelArgs): tf.TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const { clipValueMin, clipValueMax } = args.attrs as unknown as { clipValueMin: number; clipValueMax: number };
  const out = makeFloatOutput(backend, x.shape, false);
  // The stock gradient compares float32 x with float32 scalars: round the bounds the same way.
  const min = Math.fround(clipValueMin);
  const max = Math.fround(clipValueMax);
  const kernels = simdKernels(backend);
  if (kernels) {
    // Four values per instruction: the JS loop below took 8% of a MobileNetV2 training step.
    kernels.clipGradient(heapOffset(backend, x.dataId), heapOffset(backend, dy.dataId), heapOffset(backend, out.dataId), tf.util.sizeFromShape(x.shape), min, max);
    return out;
  }
  const xs = floatView(backend, x);
  const dys = floatView(backend, dy);
  const target = floatView(backend, out);
  for (let i = 0; i < target.length; i++) {
    const v = xs[i];
    target[i] = v >= min && v <= max ? dys[i] : 0;
  }
  return out;
}

export function clipGradientKernel(): tf.KernelConfig {
  return { kernelName: CLIP_GRADIENT_KERNEL, backendName: 'wasm', kernelFunc: clipGradient as tf.KernelFunc };
}

let installed = false;

/** Wraps the ClipByValue gradient (idempotent); see the module comment. */
export function installWasmClipGradient(): void {
  if (installed) return;
  const stock = tf.getGradient('ClipByValue');
  tf.registerGradient({
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const dyTensor = dy as tf.Tensor;
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || dyTensor.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, dyTensor.shape)) return stock.gradFunc(dy, saved, attrs);
      const { clipValueMin, clipValueMax } = attrs as unknown as { clipValueMin: number; clipValueMax: number };
      return { x: () => tf.engine().runKernel(CLIP_GRADIENT_KERNEL, { dy: dyTensor, x }, { clipValueMin, clipValueMax } as unknown as tf.NamedAttrMap) as tf.Tensor };
    },
  });
  installed = true;
}
