import { allocateFlatVectors, flatVectorViews, type FlatVectorStore } from '../flatVectors';

/**
 * The shared memory through which the threads of data-parallel training exchange one step:
 * each thread writes its gradients and BatchNorm moving statistics into its own slot; the threads
 * each update their range of the new weights from all the slots (SGD momentum, `FlatMomentum`),
 * and the main thread averages the statistics; every replica then copies the update.
 * No step allocates or copies a message: the buffers are shared memory, made once per model.
 * The gradient slots, the new weights and the momentum buffer lie in one wasm memory
 * (train/flatVectors.ts), so that every thread's range of the update runs as the SIMD step.
 *
 * One generation is enough: a replica writes its slot only after the main thread posted the step
 * (after it had read the previous one), and the main thread writes the update only after every
 * replica replied to the step (after each had copied the previous update).
 */
export interface ExchangeBuffers {
  /** Unique in the process: tells a replica whether an epoch brings the exchange it already has views of. */
  id: number;
  threads: number;
  gradientLength: number;
  statLength: number;
  /**
   * The flat vectors, in this order: `threads` gradient slots of gradientLength floats (thread 0
   * is the main thread), the new weights (gradientLength), the averaged statistics (statLength),
   * the momentum buffer (gradientLength), each thread updating its range of it.
   */
  flat: FlatVectorStore;
  /** threads x statLength floats. */
  movingStats: SharedArrayBuffer;
  weightLength: number;
  /**
   * Every weight of the model (`model.weights` order, end to end): how an epoch's start hands the
   * main model to replicas that keep theirs, without a weight-sized message per replica per epoch
   * (each one was garbage for two heaps, and V8 let such garbage grow resident memory by about a
   * model's size per epoch before collecting it).
   */
  modelWeights: SharedArrayBuffer;
}

let exchangesMade = 0;

export function createExchange(threads: number, gradientLength: number, statLength: number, weightLength: number): ExchangeBuffers {
  const bytes = Float32Array.BYTES_PER_ELEMENT;
  const slots = Array.from({ length: threads }, () => gradientLength);
  return {
    id: ++exchangesMade,
    threads,
    gradientLength,
    statLength,
    weightLength,
    modelWeights: new SharedArrayBuffer(weightLength * bytes),
    flat: allocateFlatVectors([...slots, gradientLength, statLength, gradientLength]),
    movingStats: new SharedArrayBuffer(threads * statLength * bytes),
  };
}

/**
 * Typed views of an exchange's buffers. Values go between them and the wasm heap directly: bulk
 * copies either way (8 MB in 0.3-0.6 ms on the 2-core machine), as fast as through ordinary memory.
 */
export class ExchangeViews {
  readonly gradientSlots: Float32Array[];
  readonly statSlots: Float32Array[];
  readonly weights: Float32Array;
  readonly stats: Float32Array;
  readonly modelWeights: Float32Array;
  readonly accumulation: Float32Array;

  constructor(readonly buffers: ExchangeBuffers) {
    const { threads, statLength } = buffers;
    const flat = flatVectorViews(buffers.flat);
    this.gradientSlots = flat.slice(0, threads);
    [this.weights, this.stats, this.accumulation] = flat.slice(threads);
    this.statSlots = Array.from({ length: threads }, (_, t) => new Float32Array(buffers.movingStats, t * statLength * 4, statLength));
    this.modelWeights = new Float32Array(buffers.modelWeights);
  }

  /** Whether `other` is this exchange (a message delivers new wrappers of the same SharedArrayBuffers). */
  sameExchange(other: ExchangeBuffers): boolean {
    return this.buffers.id === other.id;
  }
}
