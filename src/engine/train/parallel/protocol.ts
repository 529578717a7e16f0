/**
 * Messages between the training thread and its replica threads (node:worker_threads).
 *
 * Every replica holds the same model. A step: the main thread sends each replica its shard of the
 * batch; each replica returns its shard's gradients (already scaled by its share of the batch) and
 * its BatchNorm moving statistics; the main thread sums the gradients in a fixed order (its own
 * first, then replica 1, 2, ...), averages the moving statistics, and sends both back; every
 * replica, the main thread included, applies that one update with its own identical optimizer.
 * Identical inputs to identical wasm kernels give identical weights: the replicas never drift.
 */

/** A model as `model.save` hands it over: the topology JSON and one weight buffer. */
export interface ModelTransfer {
  modelTopology: unknown;
  weightSpecs: unknown[];
  weightData: ArrayBuffer;
}

export type ToReplica =
  /** A (new) model for the coming epoch; indices are into `model.weights`. */
  | { type: 'model'; model: ModelTransfer; trainable: number[]; movingStats: number[] }
  /** A fresh SGD-momentum optimizer (one per epoch, as in the single-thread trainer). */
  | { type: 'optimizer'; learningRate: number; momentum: number }
  /** Compute the gradients of `scale * crossEntropy(shard)`; `scale` = shard size / batch size. */
  | { type: 'step'; step: number; x: Float32Array; xShape: number[]; y: Float32Array; yShape: number[]; scale: number }
  /** The summed gradients (in `trainable` order) and averaged moving statistics to apply. */
  | { type: 'apply'; step: number; gradients: Float32Array[]; movingStats: Float32Array[] }
  /** Reply with every weight of the model (tests: replicas hold identical weights). */
  | { type: 'weights' }
  | { type: 'close' };

export type FromReplica =
  | { type: 'ready' }
  | { type: 'loaded' }
  | { type: 'gradients'; step: number; gradients: Float32Array[]; movingStats: Float32Array[]; loss: number; correct: number }
  | { type: 'weights'; weights: Float32Array[] }
  | { type: 'error'; message: string };
