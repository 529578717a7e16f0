/**
 * A cheaper gradient for batch normalization while training on wasm.
 *
 * tfjs-layers trains BatchNormalization as `moments(x)` followed by the FusedBatchNorm kernel.
 * The stock FusedBatchNorm gradient tiles 1/sqrt(var) to the full activation shape and spends
 * about ten full-size element-wise ops; the Mean gradient (used twice by `moments`) multiplies by a
 * full-size tensor of ones. Here:
 * - FusedBatchNorm: two per-channel sums (of dy and of dy*x) give the mean, variance, scale and
 *   offset gradients; dx is one broadcast multiply. Full-size work: 2 multiplies, 2 reductions.
 * - Mean: the gradient is dy/n broadcast by one (block-copy) Tile.
 *
 * The overrides apply only while the wasm backend is active; on other backends the stock gradient
 * runs, so their numerics are untouched. Gradients are registered globally in tfjs, hence the
 * check at call time.
 */
import * as tf from '@tensorflow/tfjs';

type GradFunc = tf.GradConfig['gradFunc'];

const onWasm = () => tf.getBackend() === 'wasm';

function fusedBatchNormGradient(stock: GradFunc): GradFunc {
  return (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    const dyTensor = dy as tf.Tensor;
    const channels = x.shape[x.rank - 1];
    const perChannel = mean.rank === 1 && mean.shape[0] === channels && variance.rank === 1 && scale?.rank === 1 && x.rank >= 2;
    if (!onWasm() || !perChannel) return stock(dy, saved, attrs);
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const reductionAxes = x.shape.slice(0, -1).map((_, i) => i);
    // Computed eagerly, like the stock gradient: tfjs runs each input's closure in its own tidy,
    // so tensors shared between closures must be created outside them (tf.grads disposes them).
    const inverseStd = tf.rsqrt(tf.add(variance, varianceEpsilon));
    const scaledInverseStd = tf.mul(scale, inverseStd);
    const sumDy = tf.sum(dyTensor, reductionAxes);
    // sum(dy * (x - mean)) without materializing x - mean.
    const sumDyCentered = tf.sub(tf.sum(tf.mul(dyTensor, x), reductionAxes), tf.mul(mean, sumDy));
    return {
      x: () => tf.mul(dyTensor, scaledInverseStd),
      mean: () => tf.neg(tf.mul(scaledInverseStd, sumDy)),
      variance: () => tf.mul(tf.mul(tf.square(inverseStd), -0.5), tf.mul(scaledInverseStd, sumDyCentered)),
      scale: () => tf.mul(inverseStd, sumDyCentered),
      offset: () => tf.clone(sumDy),
    };
  };
}

function meanGradient(stock: GradFunc): GradFunc {
  return (dy, saved, attrs) => {
    if (!onWasm()) return stock(dy, saved, attrs);
    const [x] = saved;
    const axes = tf.util.parseAxisParam((attrs as unknown as { axis: number | number[] }).axis, x.shape);
    const reduced = new Set(axes);
    const expandedShape = x.shape.map((size, i) => (reduced.has(i) ? 1 : size));
    const reps = x.shape.map((size, i) => (reduced.has(i) ? size : 1));
    const count = axes.reduce((n, a) => n * x.shape[a], 1);
    return { x: () => tf.tile(tf.reshape(tf.div(dy as tf.Tensor, count), expandedShape), reps) };
  };
}

let installed = false;

/** Wraps the FusedBatchNorm and Mean gradients (idempotent); see the module comment. */
export function installWasmBatchNormGradients(): void {
  if (installed) return;
  for (const [kernelName, wrap] of [
    ['FusedBatchNorm', fusedBatchNormGradient],
    ['Mean', meanGradient],
  ] as const) {
    const stock = tf.getGradient(kernelName);
    tf.registerGradient({ ...stock, gradFunc: wrap(stock.gradFunc) });
  }
  installed = true;
}
