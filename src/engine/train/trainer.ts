import * as tf from '@tensorflow/tfjs';
import { batchCount, batches, type Augmentation, type Split } from '../data';
import { accumulateGradients, backendSurvived, isAllocationFailure, type AccumulateOptions, type AccumulatedStep, type MicroBatch } from './microBatches';
import { topOneAgreement } from './distill';
import { FlatSgdStep, usesFlatSgd } from './flatSgd';
import { sharedReplicaPool, trainEpochDataParallel } from './parallel';

/** The PaS training recipe's SGD momentum and weight decay (the paper's released scripts). */
export const SGD_MOMENTUM = 0.9;
export const WEIGHT_DECAY = 1e-4;

export interface EpochOptions {
  batchSize: number;
  learningRate: number;
  /** SGD momentum (PaS: 0.9). A fresh optimizer per epoch keeps resumed runs identical to uninterrupted ones. */
  momentum: number;
  /** L2 weight decay on kernels and DBC latents (PaS: 1e-4). */
  weightDecay: number;
  seed: number;
  epoch: number;
  augment?: Augmentation;
  /** Variables to train (frozen masks are simply absent). */
  variables: tf.Variable[];
  /** Extra loss terms (the MACs budget), computed inside the gradient tape. */
  extraLoss?: () => tf.Scalar;
  /** Called after every batch with running means. */
  onBatch?: (progress: BatchProgress) => void;
  /** Checked between batches: a true stops the epoch after the current batch. */
  shouldStop?: () => boolean;
  /** Examples per forward/backward pass (gradient accumulation); default: the whole batch. */
  microBatch?: number;
  /** The data loss of a micro-batch; default: softmax cross-entropy on the labels. */
  dataLoss?: (output: tf.Tensor, micro: MicroBatch) => tf.Scalar;
  /** The frozen teacher whose outputs the loss matches (distillation); also what "accuracy" compares with when `labelled` is false. */
  teacher?: tf.LayersModel;
  /** False when the split has no labels: accuracy is then top-1 agreement with the teacher. Default true. */
  labelled?: boolean;
  /** Stop the epoch after this many optimizer steps (a trial run). */
  maxSteps?: number;
  /**
   * Called when a step ran out of memory and the backend survived: the step is retried with this
   * smaller micro-batch (kept for the rest of the epoch). Returning false refuses the retry.
   */
  onMicroBatchShrunk?: (microBatch: number, error: unknown) => boolean;
  /** Raised when a step fails to allocate at the smallest micro-batch, or the backend did not survive. */
  outOfMemory?: (microBatch: number, error: unknown) => Error;
  /** The step function; a test seam for simulating allocation failures. */
  accumulate?: (model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, options: AccumulateOptions) => AccumulatedStep;
  /** Threads that share each batch (data parallelism, wasm backend only; see train/parallel). Default 1. */
  workers?: number;
}

export interface BatchProgress {
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface EpochResult {
  loss: number;
  accuracy: number;
  batches: number;
  stopped: boolean;
  seconds: number;
  /** Training images per second over the epoch. */
  imagesPerSecond: number;
  /** The micro-batch the epoch ended with (smaller than asked after an out-of-memory retry). */
  microBatch: number;
}

/**
 * Whether an epoch runs on the worker-thread replicas. The replicas compute the plain
 * cross-entropy step; distillation (a teacher per replica), a custom data loss, trial-run step
 * limits, the allocation-failure test seam and micro-batches smaller than a replica's share run
 * on this thread alone instead.
 */
export function runsDataParallel(options: EpochOptions): boolean {
  const workers = options.workers ?? 1;
  if (workers <= 1 || tf.getBackend() !== 'wasm') return false;
  const share = Math.ceil(options.batchSize / workers);
  return !options.teacher && !options.dataLoss && !options.maxSteps && !options.accumulate && (options.microBatch ?? share) >= share;
}

/** The variables L2 weight decay applies to: kernels (rank > 1) and DBC latents, as in the PaS scripts; not biases or BN parameters. */
export function weightDecayed(variables: tf.Variable[]): tf.Variable[] {
  return variables.filter((v) => v.shape.length > 1 || v.name.includes('latent'));
}

/** One epoch of SGD with momentum on softmax cross-entropy (+ extra loss + weight decay); stops after the current batch when asked. */
export async function trainEpoch(model: tf.LayersModel, split: Split, options: EpochOptions): Promise<EpochResult> {
  if (runsDataParallel(options)) {
    return trainEpochDataParallel(model, split, options, await sharedReplicaPool(options.workers! - 1));
  }
  const decayed = weightDecayed(options.variables);
  // On wasm the update and weight decay run as flat JS loops (flatSgd.ts); elsewhere as tensors.
  const flatStep = usesFlatSgd() ? new FlatSgdStep(options.variables, decayed, options.learningRate, options.momentum, options.weightDecay) : undefined;
  const optimizer = flatStep ? undefined : tf.train.momentum(options.learningRate, options.momentum);
  const total = batchCount(split, options.batchSize);
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let done = 0;
  let stopped = false;
  const started = Date.now();
  const labelled = options.labelled ?? true;
  const teacher = options.teacher;
  let microBatch = options.microBatch ?? options.batchSize;
  const accumulate = options.accumulate ?? accumulateGradients;
  const batchLoss = () => {
    let loss = options.extraLoss ? options.extraLoss() : tf.scalar(0);
    if (!flatStep && options.weightDecay > 0 && decayed.length > 0) {
      const l2 = tf.addN(decayed.map((v) => tf.sum(tf.square(v))));
      loss = tf.add(loss, tf.mul(l2, options.weightDecay / 2));
    }
    return loss as tf.Scalar;
  };
  let positions = 0;
  for (const { x, y, size } of batches(split, options.batchSize, { shuffle: true, seed: options.seed, epoch: options.epoch, augment: options.augment })) {
    let step: AccumulatedStep;
    try {
      step = stepWithRetry(() =>
        accumulate(model, x, y, {
          variables: options.variables,
          microBatch,
          dataLoss: options.dataLoss ?? ((output, micro) => tf.losses.softmaxCrossEntropy(micro.y, output) as tf.Scalar),
          batchLoss,
          teacherOutput: teacher ? (input) => teacher.predict(input) as tf.Tensor : undefined,
        }),
      );
    } catch (error) {
      tf.dispose([x, y]);
      if (optimizer) disposeMomentumOptimizer(optimizer);
      throw error;
    }
    // The same update `minimize` would apply to the full batch's gradients (it passes this map too).
    let decayLoss = 0;
    if (flatStep) decayLoss = flatStep.apply(step.gradients);
    else optimizer!.applyGradients(Object.entries(step.gradients).map(([name, tensor]) => ({ name, tensor })));
    const counts = tf.tidy(() => {
      if (labelled) return { agree: tf.sum(tf.cast(tf.equal(tf.argMax(step.outputs, -1), tf.argMax(y, -1)), 'float32')).dataSync()[0], positions: size };
      return step.teacherOutputs ? topOneAgreement(step.outputs, step.teacherOutputs) : { agree: 0, positions: size };
    });
    lossSum += (step.loss + decayLoss) * size;
    correct += (counts.agree / Math.max(1, counts.positions)) * size;
    positions += size;
    seen += size;
    done++;
    tf.dispose([...Object.values(step.gradients), step.outputs, ...(step.teacherOutputs ? [step.teacherOutputs] : []), x, y]);
    options.onBatch?.({ batch: done, batches: total, loss: lossSum / seen, accuracy: correct / seen, imagesPerSecond: seen / Math.max(1e-3, (Date.now() - started) / 1000) });
    // Let signal handlers and pipe writes run: the training loop is otherwise synchronous, and a
    // Ctrl-C could only be seen at the end of the epoch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (options.shouldStop?.()) {
      stopped = true;
      break;
    }
    if (options.maxSteps !== undefined && done >= options.maxSteps) break;
  }
  if (optimizer) disposeMomentumOptimizer(optimizer);
  const seconds = (Date.now() - started) / 1000;
  return { loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, positions), batches: done, stopped, seconds, imagesPerSecond: seen / Math.max(1e-3, seconds), microBatch };

  /**
   * Runs a step; when it runs out of memory and the backend and weights survived, halves the
   * micro-batch and runs it again (nothing was applied yet). A dead backend (a wasm abort) or a
   * micro-batch of 1 ends the run with `outOfMemory`'s error.
   */
  function stepWithRetry(run: () => AccumulatedStep): AccumulatedStep {
    for (;;) {
      try {
        return run();
      } catch (error) {
        if (!isAllocationFailure(error)) throw error;
        const smaller = Math.floor(microBatch / 2);
        if (smaller < 1 || !backendSurvived(model) || options.onMicroBatchShrunk?.(smaller, error) === false) {
          throw options.outOfMemory ? options.outOfMemory(microBatch, error) : error;
        }
        microBatch = smaller;
      }
    }
  }
}

/**
 * tfjs 4.22's MomentumOptimizer.dispose frees its momentum scalar and slots but not the
 * learning-rate scalar of its SGD parent: one tensor per optimizer, so one per epoch here (found
 * by the long-search memory test). Free both.
 */
export function disposeMomentumOptimizer(optimizer: tf.MomentumOptimizer): void {
  optimizer.dispose();
  tf.SGDOptimizer.prototype.dispose.call(optimizer);
}

/** Accuracy and mean cross-entropy of a model on a split (inference mode). */
export function evaluate(model: tf.LayersModel, split: Split, batchSize = 256): { accuracy: number; loss: number } {
  let correct = 0;
  let lossSum = 0;
  let seen = 0;
  for (const { x, y, size } of batches(split, batchSize, { shuffle: false, seed: 0 })) {
    const [batchCorrect, batchLoss] = tf.tidy(() => {
      const logits = model.predict(x) as tf.Tensor;
      const right = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32'));
      const loss = tf.losses.softmaxCrossEntropy(y, logits);
      return [right.dataSync()[0], loss.dataSync()[0]];
    });
    tf.dispose([x, y]);
    correct += batchCorrect;
    lossSum += batchLoss * size;
    seen += size;
  }
  return { accuracy: correct / Math.max(1, seen), loss: lossSum / Math.max(1, seen) };
}

/** Cosine decay from `base` to 0 over `epochs`, evaluated at the start of `epoch` (0-based). */
export function cosineLearningRate(base: number, epoch: number, epochs: number): number {
  return epochs <= 1 ? base : 0.5 * base * (1 + Math.cos((Math.PI * epoch) / epochs));
}

/** The trainable variables of a model as tf.Variables (what optimizers take). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}
