/**
 * The single-thread trainer's SGD-momentum step on wasm over flat vectors of all trainable
 * values: the update the data-parallel threads already apply (FlatMomentum, with weight decay), here
 * on one thread; flatMomentum.wat's SIMD step where the runtime has it, JS loops otherwise.
 *
 * Why: through tensors, `tf.train.momentum` costs 4 kernel calls per variable and step, and L2
 * weight decay on the tape ~6 more per decayed variable (square, sum, add, and their gradients).
 * On wasm every call pays the tfjs engine's bookkeeping: RepVGG-A0 x0.5 (150 variables) spent
 * ~900 calls per step on them, and the trainer's one-worker step ran at 88% of the bare
 * forward+backward step (bench/results/throughput.md). The flat update does the same float32
 * arithmetic as `tf.train.momentum` (tested bit for bit in train-data-parallel.test.ts).
 *
 * Other backends keep the tensor update: on a GPU, reading every weight back each step would cost
 * far more than the kernel calls.
 */
import * as tf from '@tensorflow/tfjs';
import { allocateFlatVectors, flatVectorViews } from './flatVectors';
import { assignFlat, copyValuesInto, decayRangesOf, FlatMomentum, flatLayout, readFlat, type FlatLayout } from './parallel/shardStep';

interface Buffers {
  weights: Float32Array;
  gradients: Float32Array;
  momentum: FlatMomentum;
}

let cached: Buffers | undefined;

/**
 * Flat vectors for `length` values, kept while the length stays (one model across a search's
 * epochs): model-sized arrays made per epoch were garbage V8 let grow resident memory.
 */
function buffersFor(length: number): Buffers {
  if (cached && cached.weights.length === length) return cached;
  // In one wasm memory, so that the update runs as flatMomentum.wat's SIMD step (flatVectors.ts).
  const [weights, gradients, accumulation] = flatVectorViews(allocateFlatVectors([length, length, length]));
  cached = { weights, gradients, momentum: new FlatMomentum(accumulation) };
  return cached;
}

export class FlatSgdStep {
  private readonly layout: FlatLayout;
  private readonly decayRanges: Array<[number, number]>;
  private readonly buffers: Buffers;

  /** A fresh optimizer (zero momentum), as `tf.train.momentum` is fresh each epoch. */
  constructor(
    private readonly variables: tf.Variable[],
    decayed: tf.Variable[],
    learningRate: number,
    momentum: number,
    private readonly weightDecay: number,
  ) {
    this.layout = flatLayout(variables.map((v) => v.shape));
    this.decayRanges = decayRangesOf(variables, decayed, this.layout);
    this.buffers = buffersFor(this.layout.total);
    this.buffers.momentum.reset(learningRate, momentum);
  }

  /**
   * Applies one step from the batch's gradients (by variable name; a variable without one gets
   * zeros, as in the data-parallel update) plus weight decay; returns the decay term of the loss.
   */
  apply(gradients: tf.NamedTensorMap): number {
    const { weights, gradients: flat, momentum } = this.buffers;
    this.variables.forEach((v, i) => {
      const gradient = gradients[v.name];
      if (gradient) copyValuesInto(gradient, flat, this.layout.offsets[i]);
      else flat.fill(0, this.layout.offsets[i], this.layout.offsets[i] + this.layout.sizes[i]);
    });
    readFlat(this.variables, weights, this.layout);
    const squares = momentum.apply(weights, [flat], 0, weights.length, { rate: this.weightDecay, ranges: this.decayRanges });
    assignFlat(this.variables, weights, this.layout);
    return (this.weightDecay / 2) * squares;
  }
}

let enabled = true;

/** Turns the flat update off (tests compare it with the tensor update on the same backend). */
export function enableFlatSgd(on: boolean): void {
  enabled = on;
}

/** Whether the single-thread trainer updates through FlatSgdStep (see the module comment). */
export function usesFlatSgd(): boolean {
  return enabled && tf.getBackend() === 'wasm';
}
