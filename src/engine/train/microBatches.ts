/**
 * One optimization step over a batch computed as several micro-batches whose gradients are
 * accumulated, so that `--batch-size` (the optimization batch) does not decide how much
 * activation memory a step needs.
 *
 * The accumulated gradient is exactly the full batch's: the data loss is a mean over examples,
 * so the full batch's gradient is the size-weighted sum of the micro-batches' mean-loss
 * gradients; batch-level terms (the MACs budget loss, weight decay) depend on the weights only
 * and are added once, to the first micro-batch. The one difference: BatchNormalization in
 * training mode normalizes each micro-batch with that micro-batch's own statistics and updates
 * its moving averages once per micro-batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../shared/workerProtocol';
import { PasInputError } from '../errors';
import { skipDataInputGradients } from './inputGradients';

/** A micro-batch as the loss sees it: images, one-hot labels, and the teacher's outputs when distilling. */
export interface MicroBatch {
  x: tf.Tensor;
  y: tf.Tensor;
  teacher?: tf.Tensor;
}

export interface AccumulateOptions {
  variables: tf.Variable[];
  /** Examples per forward/backward pass; the last micro-batch may be smaller. */
  microBatch: number;
  /** The mean data loss of one micro-batch (cross-entropy, distillation, or both). */
  dataLoss: (output: tf.Tensor, micro: MicroBatch) => tf.Scalar;
  /** Terms that depend on the weights only (budget loss, weight decay): added once per step. */
  batchLoss?: () => tf.Scalar;
  /** The frozen teacher's output for a micro-batch (distillation); computed outside the gradient tape. */
  teacherOutput?: (x: tf.Tensor) => tf.Tensor;
}

export interface AccumulatedStep {
  /** Summed gradients by variable name; the caller applies and disposes them. */
  gradients: tf.NamedTensorMap;
  /** The step's total loss (mean data loss over the batch + batch-level terms). */
  loss: number;
  /** The model's outputs for the whole batch, in order; the caller disposes them. */
  outputs: tf.Tensor;
  /** The teacher's outputs for the whole batch when distilling; the caller disposes them. */
  teacherOutputs?: tf.Tensor;
}

/**
 * Forward and backward passes over `x`/`y` in micro-batches of `options.microBatch`, returning
 * the gradients of the full batch's loss. Nothing is applied: the caller's optimizer does that.
 */
export function accumulateGradients(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, options: AccumulateOptions): AccumulatedStep {
  skipDataInputGradients(model);
  const total = x.shape[0];
  const size = Math.max(1, Math.min(options.microBatch, total));
  let summed: tf.NamedTensorMap = {};
  let lossSum = 0;
  const outputs: tf.Tensor[] = [];
  const teacherOutputs: tf.Tensor[] = [];
  try {
    for (let start = 0; start < total; start += size) {
      const count = Math.min(size, total - start);
      const micro: MicroBatch = {
        x: count === total ? x : tf.slice(x, start, count),
        y: count === total ? y : tf.slice(y, start, count),
      };
      try {
        if (options.teacherOutput) {
          micro.teacher = tf.tidy(() => options.teacherOutput!(micro.x));
          teacherOutputs.push(micro.teacher);
        }
        const weight = count / total;
        const first = start === 0;
        const { value, grads } = tf.variableGrads(() => {
          const output = model.apply(micro.x, { training: true }) as tf.Tensor;
          outputs.push(tf.keep(output));
          let loss = tf.mul(options.dataLoss(output, micro), weight) as tf.Scalar;
          if (first && options.batchLoss) loss = tf.add(loss, options.batchLoss());
          return loss;
        }, options.variables);
        lossSum += value.dataSync()[0];
        value.dispose();
        summed = addInto(summed, grads);
      } finally {
        if (micro.x !== x) micro.x.dispose();
        if (micro.y !== y) micro.y.dispose();
      }
    }
    const result: AccumulatedStep = {
      gradients: summed,
      loss: lossSum,
      outputs: concatAndDispose(outputs),
    };
    if (options.teacherOutput) result.teacherOutputs = concatAndDispose(teacherOutputs);
    return result;
  } catch (error) {
    tf.dispose([...Object.values(summed), ...outputs, ...teacherOutputs]);
    throw error;
  }
}

function addInto(sum: tf.NamedTensorMap, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  const result: tf.NamedTensorMap = { ...sum };
  for (const [name, grad] of Object.entries(grads)) {
    if (!grad) continue;
    const previous = result[name];
    if (previous) {
      result[name] = tf.add(previous, grad);
      previous.dispose();
      grad.dispose();
    } else {
      result[name] = grad;
    }
  }
  return result;
}

function concatAndDispose(parts: tf.Tensor[]): tf.Tensor {
  if (parts.length === 1) return parts[0];
  const joined = tf.concat(parts, 0);
  tf.dispose(parts);
  return joined;
}

/**
 * The wasm backend's heap can grow to 4 GiB at most (tfjs-backend-wasm 4.22 is built with a
 * maximum of 65536 pages; measured with scripts/measure-wasm-heap.ts: 4032 MiB of tensors in
 * 64 MiB pieces, then "Aborted()", after which the module is unusable). See docs/jobs.md.
 */
export const WASM_HEAP_LIMIT_BYTES = 4 * 1024 ** 3;

/**
 * Bytes of memory a training step needs per example, estimated from the model's layer outputs:
 * every output is kept for the backward pass, which then holds a gradient of the same size, and
 * BN, ReLU and the DBC masks keep intermediates of that size too. A factor of 4 on the sum of all
 * layer outputs (float32) covers this with margin on the nets the tests measure.
 */
export function activationBytesPerExample(model: tf.LayersModel): number {
  let floats = 0;
  for (const layer of model.layers) {
    const shapes = Array.isArray(layer.outputShape[0]) ? (layer.outputShape as tf.Shape[]) : [layer.outputShape as tf.Shape];
    for (const shape of shapes) floats += shape.slice(1).reduce<number>((product, dim) => product * (dim ?? 1), 1);
  }
  return TRAINING_MEMORY_FACTOR * 4 * floats;
}

const TRAINING_MEMORY_FACTOR = 4;
/** Share of the memory left after the weights that a step's activations may use. */
const ACTIVATION_SHARE = 0.5;

/** The memory a backend can hold tensors in: the wasm heap's hard limit, else half the machine's memory. */
export function backendMemoryLimit(backend: BackendName, totalMemoryBytes: number): number {
  return backend === 'wasm' ? Math.min(WASM_HEAP_LIMIT_BYTES, totalMemoryBytes / 2) : totalMemoryBytes / 2;
}

/**
 * The largest micro-batch (at most `batchSize`) whose estimated activation memory fits half of
 * what the backend can hold after the weights (weights, their gradients, the momentum slots and
 * the distillation teacher: `weightCopies` copies). Never below 1.
 */
export function chooseMicroBatch(args: { batchSize: number; bytesPerExample: number; weightBytes: number; memoryLimitBytes: number; weightCopies?: number }): number {
  const free = args.memoryLimitBytes - (args.weightCopies ?? 4) * args.weightBytes;
  const fitting = Math.floor((ACTIVATION_SHARE * free) / Math.max(1, args.bytesPerExample));
  return Math.max(1, Math.min(args.batchSize, fitting));
}

/** Bytes of the model's weights (float32). */
export function weightBytes(model: tf.LayersModel): number {
  return 4 * model.weights.reduce((sum, w) => sum + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
}

/**
 * True for the errors an exhausted tensor memory raises: the wasm heap's "Aborted()" (emscripten's
 * abort on a failed malloc/grow), V8's array-buffer allocation failures and native OOMs.
 */
export function isAllocationFailure(error: unknown): boolean {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return /Aborted\(\)|out of memory|OOM|Array buffer allocation failed|Cannot allocate|RangeError: .*(memory|allocation)/i.test(message);
}

/**
 * Whether the backend and the model survived an allocation failure: a tiny op runs and every
 * weight can still be read. After a wasm abort neither holds (the module refuses every call), so
 * a retry there would only fail again or train on garbage.
 */
export function backendSurvived(model: tf.LayersModel): boolean {
  try {
    const ok = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]) === 3;
    if (!ok) return false;
    for (const weight of model.weights) {
      const values = weight.read().dataSync();
      if (values.length > 0 && !Number.isFinite(values[0])) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The exit-2 error of a step that does not fit even at the smallest micro-batch tried. */
export function outOfMemoryError(args: { microBatch: number; bytesPerExample: number; memoryLimitBytes: number; backend: BackendName; cause: unknown; hint?: string }): PasInputError {
  const mib = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MiB`;
  const cause = args.cause instanceof Error ? args.cause.message.split('\n')[0] : String(args.cause);
  return new PasInputError(
    `out of memory on the ${args.backend} backend at a micro-batch of ${args.microBatch} (smallest tried): a step needs about ${mib(args.microBatch * args.bytesPerExample)} of activations ` +
      `(${mib(args.bytesPerExample)} per image) and the backend holds at most ${mib(args.memoryLimitBytes)}; ${args.hint ?? 'use a smaller --micro-batch or input size, or a native backend'} (${cause})`,
  );
}
