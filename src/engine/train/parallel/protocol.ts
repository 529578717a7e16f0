import type { ExchangeBuffers } from './exchange';

/**
 * Messages between the training thread and its replica threads (node:worker_threads).
 *
 * Every replica holds the same model. A step: the main thread sends each replica its shard of the
 * batch; each replica writes its shard's gradients (already scaled by its share of the batch) and
 * its BatchNorm moving statistics into its slot of the shared exchange (exchange.ts) and replies;
 * the main thread sums the gradients in a fixed order (its own first, then replica 1, 2, ...),
 * applies SGD momentum to get the new weights, averages the moving statistics, writes both into
 * the exchange and posts 'apply'; every replica copies that update. So the replicas hold the very
 * same weights as the main thread after every step.
 */

/** A model as `model.save` hands it over: the topology JSON and one weight buffer. */
export interface ModelTransfer {
  modelTopology: unknown;
  weightSpecs: unknown[];
  weightData: ArrayBuffer;
}

/** What every epoch's model message carries besides the model: indices are into `model.weights`. */
interface EpochSetup {
  trainable: number[];
  movingStats: number[];
  exchange: ExchangeBuffers;
  /** This replica's slot in the exchange (the main thread is 0). */
  slot: number;
}

export type ToReplica =
  /** A new model (another topology than the replica holds). */
  | ({ type: 'model'; model: ModelTransfer } & EpochSetup)
  /** The same topology as the replica's model: overwrite its weights in place from the exchange's `modelWeights`. */
  | ({ type: 'sync' } & EpochSetup)
  /** Compute the gradients of `scale * crossEntropy(shard)`; `scale` = shard size / batch size. */
  | { type: 'step'; step: number; x: Float32Array; xShape: number[]; y: Float32Array; yShape: number[]; scale: number }
  /** Copy the update of step `step` from the exchange. */
  | { type: 'apply'; step: number }
  /** Reply with every weight of the model (tests: replicas hold identical weights). */
  | { type: 'weights' }
  /** Reply with the replica's tensor count and wasm heap size (tests: nothing grows over epochs). */
  | { type: 'memory' }
  | { type: 'close' };

export type FromReplica =
  | { type: 'ready' }
  /** `rebuilt`: the replica built a new model (false: it kept its model and synced the weights). */
  | { type: 'loaded'; rebuilt: boolean }
  /** The shard's gradients are in the exchange. `computeMs`: forward + backward + write; `applyMs`: the previous update. */
  | { type: 'gradients'; step: number; loss: number; correct: number; computeMs: number; applyMs: number }
  | { type: 'weights'; weights: Float32Array[] }
  | { type: 'memory'; numTensors: number; heapBytes: number; jsHeapBytes: number; externalBytes: number }
  | { type: 'error'; message: string };
