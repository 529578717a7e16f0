/**
 * The shared memory through which the threads of data-parallel training exchange one step:
 * each thread writes its gradients and BatchNorm moving statistics into its own slot; the main
 * thread sums the slots (its own gradients stay in its scratch) into new weights and averaged statistics, which every replica copies.
 * No step allocates or copies a message: the buffers are SharedArrayBuffers, made once per model.
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
  /** threads x gradientLength floats; thread 0 is the main thread. */
  gradients: SharedArrayBuffer;
  /** threads x statLength floats. */
  movingStats: SharedArrayBuffer;
  /** gradientLength floats of new weights, then statLength floats of averaged statistics. */
  update: SharedArrayBuffer;
  /** gradientLength floats: the momentum buffer, each thread updating its range of it. */
  accumulation: SharedArrayBuffer;
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
  return {
    id: ++exchangesMade,
    threads,
    gradientLength,
    statLength,
    weightLength,
    modelWeights: new SharedArrayBuffer(weightLength * bytes),
    gradients: new SharedArrayBuffer(threads * gradientLength * bytes),
    movingStats: new SharedArrayBuffer(threads * statLength * bytes),
    update: new SharedArrayBuffer((gradientLength + statLength) * bytes),
    accumulation: new SharedArrayBuffer(gradientLength * bytes),
  };
}

/**
 * Typed views of an exchange's buffers, and one thread-local scratch vector of the gradient length:
 * copying between the wasm heap and shared memory goes through it, because V8 copies into and
 * out of a SharedArrayBuffer view element by element when the other side is a byte view (the
 * heap), but in bulk between two Float32Arrays (measured: ~3x faster through the scratch).
 */
export class ExchangeViews {
  readonly scratch: Float32Array;
  readonly gradientSlots: Float32Array[];
  readonly statSlots: Float32Array[];
  readonly weights: Float32Array;
  readonly stats: Float32Array;
  readonly modelWeights: Float32Array;
  readonly accumulation: Float32Array;

  constructor(readonly buffers: ExchangeBuffers) {
    const { threads, gradientLength, statLength } = buffers;
    this.gradientSlots = Array.from({ length: threads }, (_, t) => new Float32Array(buffers.gradients, t * gradientLength * 4, gradientLength));
    this.statSlots = Array.from({ length: threads }, (_, t) => new Float32Array(buffers.movingStats, t * statLength * 4, statLength));
    this.weights = new Float32Array(buffers.update, 0, gradientLength);
    this.stats = new Float32Array(buffers.update, gradientLength * 4, statLength);
    this.modelWeights = new Float32Array(buffers.modelWeights);
    this.accumulation = new Float32Array(buffers.accumulation);
    this.scratch = new Float32Array(gradientLength);
  }

  /** Whether `other` is this exchange (a message delivers new wrappers of the same SharedArrayBuffers). */
  sameExchange(other: ExchangeBuffers): boolean {
    return this.buffers.id === other.id;
  }
}
