import type { ExchangeBuffers } from './exchange';
import type { WeightDecay } from './shardStep';

/**
 * Messages between the training thread and its replica threads (node:worker_threads).
 *
 * Every replica holds the same model. A step: the main thread sends each replica its shard of the
 * batch; each replica writes its shard's gradients (already scaled by its share of the batch) and
 * its BatchNorm moving statistics into its slot of the shared exchange (exchange.ts) and replies;
 * the main thread writes its current weights and its gradients into the exchange and posts
 * 'reduce': each thread (the main one too) updates its range of the weights, summing the gradients
 * in a fixed order (the main thread's first, with weight decay, then replica 1, 2, ...) and
 * applying SGD momentum;
 * once every replica replied, the main thread averages the moving statistics and posts 'apply';
 * every replica copies that update. So the replicas hold the very same weights as the main thread
 * after every step.
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
  /**
   * Update `[from, to)` of the exchange's weights and momentum buffer from the gradients of the
   * first `threads` slots (SGD momentum, `FlatMomentum`): the threads split the update.
   */
  | { type: 'reduce'; step: number; from: number; to: number; threads: number; learningRate: number; momentum: number; decay: WeightDecay }
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
  /** This replica's range of the update is in the exchange. */
  /** `squares`: the sum of w^2 over the decayed weights of the replica's range (the decay loss term). */
  | { type: 'reduced'; step: number; squares: number }
  | { type: 'weights'; weights: Float32Array[] }
  | { type: 'memory'; numTensors: number; heapBytes: number }
  | { type: 'error'; message: string };
