/**
 * Sizing a run before it starts: the micro-batch that fits the backend's memory, and the run time
 * measured from a few warm-up steps (issue 10 item 6).
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../shared/workerProtocol';
import { batches, type Split } from '../data';
import { accumulateGradients, activationBytesPerExample, backendMemoryLimit, chooseMicroBatch, weightBytes, type AccumulateOptions } from '../train/microBatches';
import { trainableVariables } from '../train/trainer';

/** The micro-batch for a model on a backend: the largest whose estimated activations fit (see chooseMicroBatch). */
export function microBatchFor(model: tf.LayersModel, batchSize: number, backend: BackendName, withTeacher: boolean): { microBatch: number; bytesPerExample: number; memoryLimitBytes: number } {
  const bytesPerExample = activationBytesPerExample(model);
  const memoryLimitBytes = backendMemoryLimit(backend, os.totalmem());
  // Weights, gradients, momentum, and a teacher copy when distilling.
  const microBatch = chooseMicroBatch({ batchSize, bytesPerExample, weightBytes: weightBytes(model), memoryLimitBytes, weightCopies: withTeacher ? 4 : 3 });
  return { microBatch, bytesPerExample, memoryLimitBytes };
}

/** Warm-up passes (one micro-batch each); the first one (kernel set-up, heap growth) is not timed. */
const WARMUP_STEPS = 3;

/**
 * Training images per second of forward + backward passes on `split`'s first batches, leaving
 * the model exactly as it was (BN moving statistics included: all weights are restored). The
 * optimizer update is not timed; it is a small share of a step.
 */
export function measureTrainingSpeed(model: tf.LayersModel, split: Split, options: Omit<AccumulateOptions, 'variables'> & { batchSize: number }): number {
  const saved = model.getWeights().map((w) => w.clone());
  const variables = trainableVariables(model);
  const timed: Array<{ images: number; seconds: number }> = [];
  try {
    // One micro-batch per timed pass: the speed per image of a whole batch, at a fraction of its cost on a big model.
    for (const { x, y, size } of batches(split, Math.min(options.batchSize, options.microBatch), { shuffle: false, seed: 0 })) {
      const started = Date.now();
      const result = accumulateGradients(model, x, y, { ...options, variables });
      result.outputs.dataSync(); // wait for the step to finish on asynchronous backends
      timed.push({ images: size, seconds: (Date.now() - started) / 1000 });
      tf.dispose([...Object.values(result.gradients), result.outputs, ...(result.teacherOutputs ? [result.teacherOutputs] : []), x, y]);
      if (timed.length >= WARMUP_STEPS) break;
    }
  } finally {
    model.setWeights(saved);
    tf.dispose(saved);
  }
  // With a single batch (a tiny data set) the set-up step is all there is to time.
  const steady = timed.length > 1 ? timed.slice(1) : timed;
  const images = steady.reduce((sum, t) => sum + t.images, 0);
  const seconds = steady.reduce((sum, t) => sum + t.seconds, 0);
  return images / Math.max(1e-3, seconds);
}
