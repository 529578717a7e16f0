import * as tf from '@tensorflow/tfjs';
import { batchCount, batches, type Augmentation, type Split } from '../data';
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
}

/** One epoch of SGD with momentum on softmax cross-entropy (+ extra loss + weight decay); stops after the current batch when asked. */
export async function trainEpoch(model: tf.LayersModel, split: Split, options: EpochOptions): Promise<EpochResult> {
  if ((options.workers ?? 1) > 1 && tf.getBackend() === 'wasm') {
    return trainEpochDataParallel(model, split, options, await sharedReplicaPool(options.workers! - 1));
  }
  const optimizer = tf.train.momentum(options.learningRate, options.momentum);
  const decayed = options.variables.filter((v) => v.shape.length > 1 || v.name.includes('latent'));
  const total = batchCount(split, options.batchSize);
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let done = 0;
  let stopped = false;
  const started = Date.now();
  for (const { x, y, size } of batches(split, options.batchSize, { shuffle: true, seed: options.seed, epoch: options.epoch, augment: options.augment })) {
    let logits: tf.Tensor | undefined;
    const cost = optimizer.minimize(
      () => {
        const out = model.apply(x, { training: true }) as tf.Tensor;
        logits = tf.keep(out);
        let loss = tf.losses.softmaxCrossEntropy(y, out) as tf.Scalar;
        if (options.extraLoss) loss = tf.add(loss, options.extraLoss());
        if (options.weightDecay > 0 && decayed.length > 0) {
          const l2 = tf.addN(decayed.map((v) => tf.sum(tf.square(v))));
          loss = tf.add(loss, tf.mul(l2, options.weightDecay / 2));
        }
        return loss as tf.Scalar;
      },
      true,
      options.variables,
    );
    const batchCorrect = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits!, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0]);
    lossSum += cost!.dataSync()[0] * size;
    correct += batchCorrect;
    seen += size;
    done++;
    tf.dispose([cost!, logits!, x, y]);
    options.onBatch?.({ batch: done, batches: total, loss: lossSum / seen, accuracy: correct / seen, imagesPerSecond: seen / Math.max(1e-3, (Date.now() - started) / 1000) });
    // Let signal handlers and pipe writes run: the training loop is otherwise synchronous, and a
    // Ctrl-C could only be seen at the end of the epoch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (options.shouldStop?.()) {
      stopped = true;
      break;
    }
  }
  disposeMomentumOptimizer(optimizer);
  return { loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), batches: done, stopped, seconds: (Date.now() - started) / 1000 };
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
