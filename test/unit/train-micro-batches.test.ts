/**
 * Gradient accumulation (issue 10 item 1): a step over micro-batches is the full batch's step,
 * an allocation failure is retried with smaller micro-batches or refused with exit-2 wording,
 * and the micro-batch chosen from the memory estimate shrinks as activations grow.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import type { Split } from '../../src/engine/data';
import { isPasInputError } from '../../src/engine/errors';
import { accumulateGradients, activationBytesPerExample, chooseMicroBatch, isAllocationFailure, outOfMemoryError, type AccumulateOptions } from '../../src/engine/train/microBatches';
import { trainableVariables, trainEpoch, type EpochOptions } from '../../src/engine/train/trainer';
import { seededValues } from '../support/tensors';

const SIZE = 12;

/** Conv + ReLU + pooling + dense, no BN: a micro-batched step must then equal the full-batch step exactly. */
function buildNet(inputSize = SIZE): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [inputSize, inputSize, 1], filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }),
      tf.layers.reLU(),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(2) }),
      tf.layers.reLU(),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 4, kernelInitializer: init(3) }),
    ],
  });
}

function randomSplit(count: number, seed: number): Split {
  const labels = Int32Array.from({ length: count }, (_, i) => (i * 7 + seed) % 4);
  return { images: seededValues(count * SIZE * SIZE, seed), labels, count, imageShape: [SIZE, SIZE, 1], numClasses: 4 };
}

function options(model: tf.LayersModel, extra: Partial<EpochOptions>): EpochOptions {
  return { batchSize: 64, learningRate: 0.5, momentum: 0.9, weightDecay: 1e-4, seed: 3, epoch: 0, variables: trainableVariables(model), ...extra };
}

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** max |a - b| / max |a - before| over all weights: the difference relative to the step's size. */
function relativeDifference(before: Float32Array[], a: Float32Array[], b: Float32Array[]): { diff: number; step: number } {
  let diff = 0;
  let step = 0;
  a.forEach((values, i) => values.forEach((v, j) => {
    diff = Math.max(diff, Math.abs(v - b[i][j]));
    step = Math.max(step, Math.abs(v - before[i][j]));
  }));
  return { diff, step };
}

describe('micro-batches and gradient accumulation', function () {
  this.timeout(120_000);
  before(async () => {
    await initBackend('wasm');
  });

  it('one optimizer step on a batch of 64 equals 4 accumulated micro-batches of 16 (within 1e-5 of the step)', async () => {
    const split = randomSplit(64, 5);
    const full = buildNet();
    const micro = buildNet();
    const before = weightsOf(full);
    const fullResult = await trainEpoch(full, split, options(full, { microBatch: 64, extraLoss: () => tf.mul(tf.sum(tf.square(full.weights[0].read())), 0.01) as tf.Scalar }));
    const microResult = await trainEpoch(micro, split, options(micro, { microBatch: 16, extraLoss: () => tf.mul(tf.sum(tf.square(micro.weights[0].read())), 0.01) as tf.Scalar }));
    assert.strictEqual(fullResult.batches, 1);
    assert.strictEqual(microResult.microBatch, 16);
    const { diff, step } = relativeDifference(before, weightsOf(full), weightsOf(micro));
    assert.ok(step > 1e-3, `the step moved the weights (${step})`);
    assert.ok(diff <= 1e-5 * step, `micro-batched step differs by ${diff} (step ${step})`);
    assert.ok(Math.abs(fullResult.loss - microResult.loss) <= 1e-5 * Math.abs(fullResult.loss), `loss ${fullResult.loss} vs ${microResult.loss}`);
    full.dispose();
    micro.dispose();
  });

  it('a step with an uneven last micro-batch (64 = 3 x 20 + 4) equals the full batch too', () => {
    const model = buildNet();
    const x = tf.tensor4d(seededValues(64 * SIZE * SIZE, 9), [64, SIZE, SIZE, 1]);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 4), 'int32'), 4);
    const common: AccumulateOptions = { variables: trainableVariables(model), microBatch: 64, dataLoss: (out, m) => tf.losses.softmaxCrossEntropy(m.y, out) as tf.Scalar };
    const whole = accumulateGradients(model, x, y, common);
    const pieces = accumulateGradients(model, x, y, { ...common, microBatch: 20 });
    for (const name of Object.keys(whole.gradients)) {
      const a = whole.gradients[name].dataSync();
      const b = pieces.gradients[name].dataSync();
      const scale = Math.max(...Array.from(a, Math.abs));
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * scale, `${name}[${i}]: ${v} vs ${b[i]}`));
    }
    tf.dispose([x, y, ...Object.values(whole.gradients), ...Object.values(pieces.gradients), whole.outputs, pieces.outputs]);
    model.dispose();
  });

  it('a simulated allocation failure is retried with halved micro-batches and gives the same step', async () => {
    const split = randomSplit(64, 6);
    const reference = buildNet();
    const retried = buildNet();
    await trainEpoch(reference, split, options(reference, { microBatch: 16 }));
    const shrunk: number[] = [];
    const attempts: number[] = [];
    const result = await trainEpoch(retried, split, options(retried, {
      microBatch: 64,
      onMicroBatchShrunk: (size) => { shrunk.push(size); return true; },
      accumulate: (model, x, y, o) => {
        attempts.push(o.microBatch);
        // What the wasm heap throws when a malloc fails.
        if (o.microBatch > 16) throw new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.');
        return accumulateGradients(model, x, y, o);
      },
    }));
    assert.deepStrictEqual(shrunk, [32, 16]);
    assert.deepStrictEqual(attempts, [64, 32, 16]);
    assert.strictEqual(result.microBatch, 16);
    const before = weightsOf(buildNet());
    const { diff, step } = relativeDifference(before, weightsOf(reference), weightsOf(retried));
    assert.ok(diff <= 1e-6 * step, `retried step differs by ${diff}`);
    reference.dispose();
    retried.dispose();
  });

  it('a failure at micro-batch 1 ends in the out-of-memory input error, not an internal error', async () => {
    const model = buildNet();
    const tensorsBefore = tf.memory().numTensors;
    await assert.rejects(
      trainEpoch(model, randomSplit(8, 7), options(model, {
        batchSize: 8,
        microBatch: 2,
        accumulate: () => { throw new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.'); },
        outOfMemory: (size, error) => outOfMemoryError({ microBatch: size, bytesPerExample: activationBytesPerExample(model), memoryLimitBytes: 2 ** 32, backend: 'wasm', cause: error }),
      })),
      (error: unknown) => {
        assert.ok(isPasInputError(error), String(error));
        assert.match((error as Error).message, /out of memory on the wasm backend at a micro-batch of 1 \(smallest tried\).*MiB of activations/);
        return true;
      },
    );
    assert.ok(tf.memory().numTensors <= tensorsBefore + 1, 'no tensors leak from the failed step');
    model.dispose();
  });

  it('recognizes allocation failures and nothing else', () => {
    assert.ok(isAllocationFailure(new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.')));
    assert.ok(isAllocationFailure(new RangeError('Array buffer allocation failed')));
    assert.ok(!isAllocationFailure(new Error('Error in softmaxCrossEntropy: Shapes 4,2 and 4,10 must match')));
  });

  it('the chosen micro-batch fits the memory limit and shrinks as the input grows', () => {
    const small = buildNet(12);
    const large = buildNet(96);
    const perSmall = activationBytesPerExample(small);
    const perLarge = activationBytesPerExample(large);
    assert.ok(perLarge > 32 * perSmall, `${perLarge} vs ${perSmall}`);
    const limit = 64 * 2 ** 20;
    const args = { batchSize: 64, weightBytes: 1e6, memoryLimitBytes: limit };
    const microSmall = chooseMicroBatch({ ...args, bytesPerExample: perSmall });
    const microLarge = chooseMicroBatch({ ...args, bytesPerExample: perLarge });
    assert.ok(microLarge < microSmall && microLarge >= 1, `${microLarge} < ${microSmall}`);
    assert.ok(microLarge * perLarge <= limit - 4e6, 'the estimate fits what is left after the weights');
    assert.strictEqual(chooseMicroBatch({ ...args, bytesPerExample: 1e12 }), 1, 'never below 1');
    small.dispose();
    large.dispose();
  });
});
