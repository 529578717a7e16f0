/**
 * Distillation from the original model (issue 10 item 4): a student learns the teacher's outputs
 * without labels, on a classifier (KL on softmax) and on a dense per-pixel model (MSE); the
 * fidelity metrics read perfect for identical models; and the whole job prunes a dense model
 * from a flat folder of unlabelled images, reporting its fidelity.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import type { Split } from '../../src/engine/data';
import { saveLayersModelToDir } from '../../src/engine/io';
import { dataLossFor, fidelity, meanSquaredError, outputKind, softmaxKlDivergence } from '../../src/engine/train/distill';
import { trainableVariables, trainEpoch } from '../../src/engine/train/trainer';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { makeTempDir, parseEvents, runCli } from '../support/cli';
import { makeFlatFolder } from '../support/imageFolders';
import { seededValues } from '../support/tensors';

const SIZE = 8;

/** A fully-convolutional per-pixel model (Conv2D/BN/ReLU, 'same' padding): output SIZE x SIZE x channels. */
function buildDenseModel(seed: number, channels = 2): tf.LayersModel {
  const init = (s: number) => tf.initializers.heNormal({ seed: seed * 10 + s });
  return tf.sequential({
    name: `dense_${seed}`,
    layers: [
      tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(1) }),
      tf.layers.batchNormalization({}),
      tf.layers.reLU(),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(2) }),
      tf.layers.batchNormalization({}),
      tf.layers.reLU(),
      tf.layers.conv2d({ filters: channels, kernelSize: 1, padding: 'same', kernelInitializer: init(3) }),
    ],
  });
}

/** Conv + ReLU + flatten + dense: a classifier whose outputs vary with the input (no BN, so few steps show). */
function buildSmallClassifier(seed: number): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [SIZE, SIZE, 1], filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }),
    ],
  });
}

function unlabelledSplit(count: number, channels: number, seed: number): Split {
  return { images: seededValues(count * SIZE * SIZE * channels, seed), labels: new Int32Array(count), count, imageShape: [SIZE, SIZE, channels], numClasses: 0 };
}

/** The mean distillation loss of `student` against `teacher` over a split (inference mode). */
function distillLoss(teacher: tf.LayersModel, student: tf.LayersModel, split: Split): number {
  return tf.tidy(() => {
    const x = tf.tensor4d(split.images, [split.count, ...split.imageShape] as [number, number, number, number]);
    const t = teacher.predict(x) as tf.Tensor;
    const s = student.predict(x) as tf.Tensor;
    return (outputKind(teacher) === 'classifier' ? softmaxKlDivergence(t, s) : meanSquaredError(t, s)).dataSync()[0];
  });
}

async function distillEpochs(teacher: tf.LayersModel, student: tf.LayersModel, split: Split, epochs: number, learningRate: number): Promise<void> {
  for (let epoch = 0; epoch < epochs; epoch++) {
    await trainEpoch(student, split, {
      batchSize: 16, learningRate, momentum: 0.9, weightDecay: 0, seed: 2, epoch, variables: trainableVariables(student),
      dataLoss: dataLossFor({ labels: false, distill: outputKind(teacher) }), teacher, labelled: false, microBatch: 8,
    });
  }
}

describe('distillation from the original model', function () {
  this.timeout(300_000);
  before(async () => {
    await initBackend('wasm');
  });

  it('the losses are 0 and the fidelity perfect for a model against itself', () => {
    const classifier = buildBuiltin('builtin:plain-cnn', { inputShape: [SIZE, SIZE, 1], numClasses: 4, seed: 3 });
    const dense = buildDenseModel(1);
    assert.strictEqual(outputKind(classifier), 'classifier');
    assert.strictEqual(outputKind(dense), 'dense');
    assert.ok(Math.abs(distillLoss(classifier, classifier, unlabelledSplit(16, 1, 4))) < 1e-6);
    assert.strictEqual(distillLoss(dense, dense, unlabelledSplit(16, 3, 4)), 0);
    assert.deepStrictEqual(fidelity(classifier, classifier, unlabelledSplit(16, 1, 5)), { metric: 'top1-agreement', value: 1 });
    assert.deepStrictEqual(fidelity(dense, dense, unlabelledSplit(16, 3, 5)), { metric: 'psnr-db', value: Infinity });
    classifier.dispose();
    dense.dispose();
  });

  it('a classifier student learns the teacher without labels: the KL divergence falls and the top-1 agreement rises', async () => {
    const teacher = buildSmallClassifier(3);
    // An untrained net's softmax is nearly uniform; a sharper classifier gives the student something to learn.
    const head = teacher.layers[teacher.layers.length - 1];
    head.setWeights(head.getWeights().map((w, i) => (i === 0 ? tf.mul(w, 5) : w)));
    const student = buildSmallClassifier(9);
    const split = unlabelledSplit(64, 1, 6);
    const before = distillLoss(teacher, student, split);
    const agreementBefore = fidelity(teacher, student, split).value;
    await distillEpochs(teacher, student, split, 15, 0.1);
    const after = distillLoss(teacher, student, split);
    const agreementAfter = fidelity(teacher, student, split).value;
    assert.ok(after < 0.5 * before, `KL ${before} -> ${after}`);
    assert.ok(agreementAfter > agreementBefore, `top-1 agreement ${agreementBefore} -> ${agreementAfter}`);
    teacher.dispose();
    student.dispose();
  });

  it('a dense per-pixel student learns the teacher: the MSE falls and the PSNR rises', async () => {
    const teacher = buildDenseModel(1);
    const student = buildDenseModel(2);
    const split = unlabelledSplit(64, 3, 7);
    const before = distillLoss(teacher, student, split);
    const psnrBefore = fidelity(teacher, student, split).value;
    await distillEpochs(teacher, student, split, 6, 0.02);
    const after = distillLoss(teacher, student, split);
    assert.ok(after < 0.5 * before, `MSE ${before} -> ${after}`);
    assert.ok(fidelity(teacher, student, split).value > psnrBefore + 3, 'PSNR up by more than 3 dB');
    teacher.dispose();
    student.dispose();
  });

  it('pas search prunes a dense model from a flat folder of unlabelled images and reports its fidelity (PSNR)', async () => {
    const root = makeTempDir('pas-distill-cli-');
    try {
      const modelDir = path.join(root, 'model');
      const model = buildDenseModel(1);
      await saveLayersModelToDir(model, modelDir);
      model.dispose();
      const data = makeFlatFolder(path.join(root, 'images'), 40, SIZE, true);
      const out = path.join(root, 'out');
      const result = runCli(['search', path.join(modelDir, 'model.json'), '--data', `folder:${data}`, '--target-macs', '0.5', '--search-epochs', '2', '--finetune-epochs', '1', '--batch-size', '8', '--backend', 'wasm', '--out', out, '--json'], { timeoutMs: 240_000 });
      assert.strictEqual(result.status, 0, result.stderr);
      const events = parseEvents(result.stdout);
      const estimate = events.find((e) => e.type === 'estimate') as { imagesPerSecond: number; seconds: number } | undefined;
      assert.ok(estimate && estimate.imagesPerSecond > 0 && estimate.seconds > 0, 'an estimate before training');
      const done = events.find((e) => e.type === 'done') as { report: any };
      assert.strictEqual(done.report.fidelity.metric, 'psnr-db');
      assert.ok(done.report.fidelity.value === null || done.report.fidelity.value > 0, JSON.stringify(done.report.fidelity));
      assert.strictEqual(done.report.distilled, true);
      assert.strictEqual(done.report.labelled, false);
      assert.ok(done.report.macsAfter <= 0.53 * done.report.macsBefore, `MACs ${done.report.macsAfter} of ${done.report.macsBefore}`);
      const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
      assert.deepStrictEqual(report.fidelity, done.report.fidelity);
      const epochs = events.filter((e) => e.type === 'epoch') as Array<{ imagesPerSecond?: number; peakRssBytes?: number }>;
      assert.ok(epochs.length === 3 && epochs.every((e) => e.imagesPerSecond! > 0 && e.peakRssBytes! > 0));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('pas search distills a classifier from unlabelled images: accuracies are top-1 agreement with the original', async () => {
    const root = makeTempDir('pas-distill-classifier-');
    try {
      const modelDir = path.join(root, 'model');
      const model = buildBuiltin('builtin:plain-cnn', { inputShape: [SIZE, SIZE, 1], numClasses: 4, seed: 3 });
      await saveLayersModelToDir(model, modelDir);
      model.dispose();
      const data = makeFlatFolder(path.join(root, 'images'), 40, SIZE);
      const result = runCli(['search', path.join(modelDir, 'model.json'), '--data', `folder:${data}`, '--search-epochs', '1', '--finetune-epochs', '1', '--batch-size', '8', '--backend', 'wasm', '--out', path.join(root, 'out')], { timeoutMs: 240_000 });
      assert.strictEqual(result.status, 0, result.stderr);
      assert.match(result.stdout, /test top-1 agreement with the original\s+100\.00%/);
      assert.match(result.stdout, /fidelity of the deployed model to the original on the test images: [\d.]+% top-1 agreement \(learned by distillation\)/);
      const report = JSON.parse(fs.readFileSync(path.join(root, 'out', 'report.json'), 'utf8'));
      assert.strictEqual(report.fidelity.metric, 'top1-agreement');
      assert.strictEqual(report.fidelity.value, report.accuracyAfter, 'on unlabelled data the accuracy is the agreement with the original');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
