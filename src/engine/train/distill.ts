/**
 * Distillation from the original (unpruned, frozen) model: the masked model learns to reproduce
 * the teacher's outputs, which needs no labels. Classifier outputs ([batch, classes] logits) are
 * matched with the KL divergence of the softmaxes; any other output (segmentation maps,
 * image-to-image, embeddings) with the mean squared error.
 */
import * as tf from '@tensorflow/tfjs';
import { batches, type Split } from '../data';
import type { MicroBatch } from './microBatches';

/** How an output is compared with the teacher's. */
export type OutputKind = 'classifier' | 'dense';

/** A rank-2 output with at least two columns is a classifier's logits; anything else is dense. */
export function outputKind(model: tf.LayersModel): OutputKind {
  const shape = model.outputs[0].shape;
  return shape.length === 2 && (shape[1] ?? 0) >= 2 ? 'classifier' : 'dense';
}

/** KL(softmax(teacher) || softmax(student)), summed over classes, mean over examples. */
export function softmaxKlDivergence(teacherLogits: tf.Tensor, studentLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const teacherLog = tf.logSoftmax(teacherLogits);
    const studentLog = tf.logSoftmax(studentLogits);
    return tf.mean(tf.sum(tf.mul(tf.exp(teacherLog), tf.sub(teacherLog, studentLog)), -1)) as tf.Scalar;
  });
}

/** Mean squared error over every element. */
export function meanSquaredError(teacher: tf.Tensor, student: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(student, teacher)) as tf.Scalar);
}

/**
 * The data loss of a step: cross-entropy on labels, the distillation term against the teacher,
 * or (labels and --distill) their sum.
 */
export function dataLossFor(args: { labels: boolean; distill: OutputKind | null }): (output: tf.Tensor, micro: MicroBatch) => tf.Scalar {
  return (output, micro) => {
    const terms: tf.Scalar[] = [];
    if (args.labels) terms.push(tf.losses.softmaxCrossEntropy(micro.y, output) as tf.Scalar);
    if (args.distill) {
      if (!micro.teacher) throw new Error('distillation needs the teacher outputs of the micro-batch');
      terms.push(args.distill === 'classifier' ? softmaxKlDivergence(micro.teacher, output) : meanSquaredError(micro.teacher, output));
    }
    if (terms.length === 0) throw new Error('a training step needs labels or a teacher');
    return (terms.length === 1 ? terms[0] : tf.addN(terms)) as tf.Scalar;
  };
}

/**
 * Count of positions where two outputs pick the same top-1 channel (the last axis): examples for
 * a classifier, pixels for a segmentation map. With labels absent this is what the job reports as
 * "accuracy": agreement with the original model.
 */
export function topOneAgreement(a: tf.Tensor, b: tf.Tensor): { agree: number; positions: number } {
  // A one-channel output has no top-1 choice: agreement is undefined there and counted as 0.
  if (a.shape[a.shape.length - 1] === 1) return { agree: 0, positions: a.size };
  return tf.tidy(() => {
    const same = tf.equal(tf.argMax(a, -1), tf.argMax(b, -1));
    return { agree: tf.sum(tf.cast(same, 'float32')).dataSync()[0], positions: same.size };
  });
}

/** Top-1 agreement of `student` with `teacher` on a split (inference mode): the "accuracy" of unlabelled data. */
export function agreement(teacher: tf.LayersModel, student: tf.LayersModel, split: Split, batchSize = 64): number {
  let agree = 0;
  let positions = 0;
  for (const { x, y } of batches(split, batchSize, { shuffle: false, seed: 0 })) {
    const counts = tf.tidy(() => topOneAgreement(teacher.predict(x) as tf.Tensor, student.predict(x) as tf.Tensor));
    agree += counts.agree;
    positions += counts.positions;
    tf.dispose([x, y]);
  }
  return agree / Math.max(1, positions);
}

/** How close the deployed model is to the original on a split: `{ metric, value }` as report.json records it. */
export interface Fidelity {
  /** `top1-agreement`: share of examples on which both models pick the same class; `psnr-db`: peak signal-to-noise ratio of the outputs. */
  metric: 'top1-agreement' | 'psnr-db';
  value: number;
}

/**
 * Fidelity of `student` to `teacher` on `split` (inference mode). Classifiers: top-1 agreement in
 * [0, 1]. Dense outputs: PSNR in dB, 10 log10(R^2 / MSE) with R the teacher's output range (max -
 * min) over the split; identical outputs give Infinity, which JSON writes as null.
 */
export function fidelity(teacher: tf.LayersModel, student: tf.LayersModel, split: Split, batchSize = 64): Fidelity {
  const kind = outputKind(teacher);
  let agree = 0;
  let positions = 0;
  let squaredErrorSum = 0;
  let elements = 0;
  let low = Infinity;
  let high = -Infinity;
  for (const { x, y } of batches(split, batchSize, { shuffle: false, seed: 0 })) {
    tf.tidy(() => {
      const t = teacher.predict(x) as tf.Tensor;
      const s = student.predict(x) as tf.Tensor;
      if (kind === 'classifier') {
        const counts = topOneAgreement(t, s);
        agree += counts.agree;
        positions += counts.positions;
      } else {
        squaredErrorSum += tf.sum(tf.squaredDifference(s, t)).dataSync()[0];
        elements += t.size;
        low = Math.min(low, tf.min(t).dataSync()[0]);
        high = Math.max(high, tf.max(t).dataSync()[0]);
      }
    });
    tf.dispose([x, y]);
  }
  if (kind === 'classifier') return { metric: 'top1-agreement', value: agree / Math.max(1, positions) };
  const mse = squaredErrorSum / Math.max(1, elements);
  const range = high > low ? high - low : 1;
  return { metric: 'psnr-db', value: mse === 0 ? Infinity : 10 * Math.log10((range * range) / mse) };
}
