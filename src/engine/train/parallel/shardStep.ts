import * as tf from '@tensorflow/tfjs';
import { asWasmBackend, floatView } from '../../backends/wasm-heap';
import { skipDataInputGradients } from '../inputGradients';
import { momentumStepFor, type MomentumStep } from '../flatVectors';

/** What one replica computed for its shard of a batch (its gradients went into the flat vector it was given). */
export interface ShardResult {
  /** Mean cross-entropy of the shard (unscaled, without extra terms). */
  crossEntropy: number;
  /** The value of the extra terms (MACs budget, weight decay); 0 where none were given. */
  extraLoss: number;
  /** Correctly classified images of the shard. */
  correct: number;
}

/** Where each variable sits in a flat vector that holds all of them end to end. */
export interface FlatLayout {
  offsets: number[];
  sizes: number[];
  total: number;
}

export function flatLayout(shapes: number[][]): FlatLayout {
  const sizes = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    offsets.push(total);
    total += size;
  }
  return { offsets, sizes, total };
}

/**
 * Copies a float32 tensor's values into `target` at `offset`. On wasm it reads the heap in place
 * (dataSync would allocate a fresh copy of every gradient, every step).
 */
export function copyValuesInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  if (tf.getBackend() === 'wasm' && tensor.dtype === 'float32') {
    target.set(floatView(asWasmBackend(tf.backend()), tensor), offset);
  } else {
    target.set(tensor.dataSync() as Float32Array, offset);
  }
}

/**
 * Gradients of `scale * crossEntropy(model(x), y) + extra()` with respect to `variables`, written
 * into `into` (laid out as `layout`) (training mode: BatchNorm uses the shard's statistics and
 * updates its moving averages). Shared by the main thread and the replica threads, so both
 * compute exactly the same way.
 */
export function shardGradients(
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  scale: number,
  variables: tf.Variable[],
  into: Float32Array,
  layout: FlatLayout,
  extra?: () => tf.Scalar,
): ShardResult {
  skipDataInputGradients(model);
  let crossEntropy = 0;
  let extraLoss = 0;
  let correct = 0;
  // The tidy returns tensors only: tfjs walks a tidy's result looking for tensors, and walking
  // large Float32Arrays element by element cost more than the backward pass.
  const gradientTensors = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      crossEntropy = ce.dataSync()[0];
      correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0];
      let loss = tf.mul(ce, scale) as tf.Scalar;
      if (extra) {
        const extraValue = extra();
        extraLoss = extraValue.dataSync()[0];
        loss = tf.add(loss, extraValue);
      }
      return loss;
    }, variables);
    // A variable the loss does not reach gets zeros (minimize would skip it; with a fresh
    // momentum optimizer per epoch a zero update leaves it unchanged as well).
    return variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
  });
  gradientTensors.forEach((g, i) => copyValuesInto(g, into, layout.offsets[i]));
  tf.dispose(gradientTensors);
  return { crossEntropy, extraLoss, correct };
}

/** Indices into `model.weights` of the BatchNorm moving mean and variance variables. */
export function movingStatIndices(model: tf.LayersModel): number[] {
  return model.weights.flatMap((w, i) => (/moving_(mean|variance)/.test(w.originalName) ? [i] : []));
}

/** Overwrites each variable with its slice of the flat vector `values` (laid out as `layout`). */
export function assignFlat(variables: tf.Variable[], values: Float32Array, layout: FlatLayout): void {
  variables.forEach((variable, i) => {
    const offset = layout.offsets[i];
    tf.tidy(() => variable.assign(tf.tensor(values.subarray(offset, offset + layout.sizes[i]), variable.shape)));
  });
}

/** Copies the variables' values into the flat vector `target` (laid out as `layout`). */
export function readFlat(variables: tf.Variable[], target: Float32Array, layout: FlatLayout): void {
  variables.forEach((variable, i) => copyValuesInto(variable, target, layout.offsets[i]));
}

/**
 * SGD with momentum over flat vectors: the update `tf.train.momentum` makes, in the same float32
 * arithmetic (each product and sum rounded to float32: doubles are wide enough that rounding a
 * double result to float32 gives the correctly rounded float32 result), fused into one pass that
 * also sums the replicas' gradients in a fixed order. Each element's result depends only on that
 * element, so the vector can be cut into ranges that different threads update (the data-parallel
 * step does: each thread updates its range of the shared vectors); every replica then copies the
 * new weights, so the replicas hold identical weights by construction.
 */
export class FlatMomentum {
  private momentum = 0;
  private step = 0;

  /** `accumulation`: the momentum buffer, this thread's own or shared with the other threads. */
  constructor(readonly accumulation: Float32Array, learningRate = 0, momentum = 0) {
    this.configure(learningRate, momentum);
  }

  configure(learningRate: number, momentum: number): void {
    this.momentum = Math.fround(momentum);
    this.step = Math.fround(-learningRate);
  }

  /** A fresh optimizer (zero momentum accumulation) with these settings, in the same memory. */
  reset(learningRate: number, momentum: number): void {
    this.accumulation.fill(0);
    this.configure(learningRate, momentum);
  }

  /**
   * `weights` holds the current values on entry and the new ones on return, over `[from, to)`
   * (all of it by default); `gradients` are the replicas' flat gradient vectors, summed first to
   * last. With `decay`, L2 weight decay is added to the first gradient inside its ranges, as its
   * gradient `rate * w` in tfjs's float32 order ((rate / 2) * (2 * w)), in the same pass: each
   * thread decays its own range. Returns the sum of w^2 over the decayed values of the range
   * (the loss term is rate / 2 times the sum over all ranges).
   */
  apply(weights: Float32Array, gradients: Float32Array[], from = 0, to = weights.length, decay?: WeightDecay): number {
    const simd = this.simdStep(weights, gradients);
    let squares = 0;
    let next = from;
    if (decay && decay.rate > 0) {
      const half = Math.fround(decay.rate / 2);
      for (const [start, end] of decay.ranges) {
        const a = Math.max(start, from);
        const b = Math.min(end, to);
        if (a >= b) continue;
        if (next < a) this.update(weights, gradients, next, a, 0, simd);
        squares += this.update(weights, gradients, a, b, half, simd);
        next = b;
      }
    }
    if (next < to) this.update(weights, gradients, next, to, 0, simd);
    return squares;
  }

  /**
   * The update over `[from, to)`, with decay `half` (rate / 2; 0: none), by `simd` where given (it
   * is resolved once per apply); returns the sum of w^2 where decayed.
   */
  private update(weights: Float32Array, gradients: Float32Array[], from: number, to: number, half: number, simd: SimdStep | undefined): number {
    if (simd) return simd.step(weights.byteOffset, this.accumulation.byteOffset, gradients[0].byteOffset, simd.stride, gradients.length, from, to, this.momentum, this.step, half);
    const fround = Math.fround;
    const accumulation = this.accumulation;
    const m = this.momentum;
    const c = this.step;
    const first = gradients[0];
    let squares = 0;
    // One or two threads (the common case) without the inner loop over gradient vectors, and
    // without a branch inside the loop: each case is its own loop (a `second ? ... : ...` per
    // element ran at half the speed: 6 ns per weight against 2.7).
    if (gradients.length === 2) {
      const second = gradients[1];
      if (half > 0) {
        for (let k = from; k < to; k++) {
          const w = weights[k];
          squares += w * w;
          const g = fround(fround(first[k] + fround(half * (2 * w))) + second[k]);
          const a = fround(fround(m * accumulation[k]) + g);
          accumulation[k] = a;
          weights[k] = fround(c * a) + w;
        }
        return squares;
      }
      for (let k = from; k < to; k++) {
        const g = fround(first[k] + second[k]);
        const a = fround(fround(m * accumulation[k]) + g);
        accumulation[k] = a;
        weights[k] = fround(c * a) + weights[k];
      }
      return 0;
    }
    if (gradients.length === 1) {
      if (half > 0) {
        for (let k = from; k < to; k++) {
          const w = weights[k];
          squares += w * w;
          const g = fround(first[k] + fround(half * (2 * w)));
          const a = fround(fround(m * accumulation[k]) + g);
          accumulation[k] = a;
          weights[k] = fround(c * a) + w;
        }
        return squares;
      }
      for (let k = from; k < to; k++) {
        const a = fround(fround(m * accumulation[k]) + first[k]);
        accumulation[k] = a;
        weights[k] = fround(c * a) + weights[k];
      }
      return 0;
    }
    for (let k = from; k < to; k++) {
      const w = weights[k];
      let g = first[k];
      if (half > 0) {
        squares += w * w;
        g = fround(g + fround(half * (2 * w)));
      }
      for (let s = 1; s < gradients.length; s++) g = fround(g + gradients[s][k]);
      const a = fround(fround(m * accumulation[k]) + g);
      accumulation[k] = a;
      weights[k] = fround(c * a) + w;
    }
    return squares;
  }

  /**
   * flatMomentum.wat's step, where it can run: the weights, the gradients and the momentum buffer
   * all lie in one wasm memory of FlatVectors (train/flatVectors.ts), the gradients equally spaced
   * (the exchange's slots). Otherwise the JS loops above.
   */
  private simdStep(weights: Float32Array, gradients: Float32Array[]): SimdStep | undefined {
    const buffer = weights.buffer;
    const step = momentumStepFor(buffer);
    if (!step || this.accumulation.buffer !== buffer || gradients.length === 0) return undefined;
    const stride = gradients.length > 1 ? gradients[1].byteOffset - gradients[0].byteOffset : 0;
    for (let s = 0; s < gradients.length; s++) {
      if (gradients[s].buffer !== buffer || gradients[s].byteOffset !== gradients[0].byteOffset + s * stride) return undefined;
    }
    return { step, stride };
  }
}

/** flatMomentum.wat's step bound to the vectors' memory, and the byte distance between gradient vectors. */
interface SimdStep {
  step: MomentumStep;
  stride: number;
}

/** L2 weight decay of a flat update: `rate` and the ascending, disjoint `[start, end)` ranges it applies to. */
export interface WeightDecay {
  rate: number;
  ranges: Array<[number, number]>;
}

/** The flat ranges of the `decayed` variables among `variables` (laid out as `layout`), ascending. */
export function decayRangesOf(variables: tf.Variable[], decayed: tf.Variable[], layout: FlatLayout): Array<[number, number]> {
  const decayedSet = new Set(decayed);
  return variables.flatMap((v, i): Array<[number, number]> => (decayedSet.has(v) ? [[layout.offsets[i], layout.offsets[i] + layout.sizes[i]]] : []));
}

/** `[from, to)` of each of `parts` threads over `length` values: contiguous, the first ones a value longer. */
export function updateRanges(length: number, parts: number): Array<[number, number]> {
  const base = Math.floor(length / parts);
  const ranges: Array<[number, number]> = [];
  let from = 0;
  for (let t = 0; t < parts; t++) {
    const to = from + base + (t < length % parts ? 1 : 0);
    ranges.push([from, to]);
    from = to;
  }
  return ranges;
}

/** A weight of a layers model (`model.weights[i]`): BatchNorm moving statistics are written through it. */
export type ModelWeight = tf.LayersModel['weights'][number];

/**
 * The BatchNorm moving statistics of `model`, resolved once: `model.weights` gathers every
 * layer's weights on each access, too slow to call per variable per step.
 */
export function weightsAt(model: tf.LayersModel, indices: number[]): ModelWeight[] {
  const weights = model.weights;
  return indices.map((i) => weights[i]);
}

/** Overwrites model weights (e.g. the moving statistics) with their slices of `values` (laid out as `layout`). */
export function writeLayerWeights(weights: ModelWeight[], values: Float32Array, layout: FlatLayout): void {
  weights.forEach((variable, i) => {
    const offset = layout.offsets[i];
    const value = tf.tensor(values.subarray(offset, offset + layout.sizes[i]), variable.shape as number[]);
    variable.write(value);
    value.dispose();
  });
}

/** Reads model weights (e.g. the moving statistics) into `target` (laid out as `layout`). */
export function readLayerWeights(weights: ModelWeight[], target: Float32Array, layout: FlatLayout): void {
  weights.forEach((variable, i) => copyValuesInto(variable.read(), target, layout.offsets[i]));
}

/** The mean of the replicas' moving statistics (summed in double, first to last, as before). */
export function averageInto(target: Float32Array, slots: Float32Array[]): void {
  const count = slots.length;
  for (let k = 0; k < target.length; k++) {
    let total = 0;
    for (const slot of slots) total += slot[k];
    target[k] = total / count;
  }
}
