import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { seededValues } from '../support/tensors';


/**
 * A small learnable task: 16x16 noise images where one quadrant is brighter; the label is that
 * quadrant. Generated from a seed so every run sees the same data.
 */
function quadrantTask(count: number, size: number, seed: number): { xs: tf.Tensor4D; labels: tf.Tensor2D; classes: number[] } {
  const noise = seededValues(count * size * size, seed);
  const pixels = new Float32Array(count * size * size);
  const classes: number[] = [];
  const half = size / 2;
  for (let n = 0; n < count; n++) {
    const quadrant = n % 4;
    classes.push(quadrant);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const i = (n * size + y) * size + x;
        const inQuadrant = Math.floor(y / half) * 2 + Math.floor(x / half) === quadrant;
        pixels[i] = 0.25 * (noise[i] + 1) + (inQuadrant ? 0.35 : 0);
      }
    }
  }
  return {
    xs: tf.tensor4d(pixels, [count, size, size, 1]),
    labels: tf.oneHot(tf.tensor1d(classes, 'int32'), 4) as tf.Tensor2D,
    classes,
  };
}

/** Conv + BN + ReLU (strided), depthwise, pooling: the layer kinds the engine trains. */
function buildSmallNet(size: number): tf.LayersModel {
  const init = (seed: number) => tf.initializers.heNormal({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [size, size, 1], filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1) }),
      tf.layers.batchNormalization({ momentum: 0.8 }), // moving stats settle within a short run
      tf.layers.reLU(),
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: init(2) }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, kernelInitializer: init(3) }),
      tf.layers.batchNormalization({ momentum: 0.8 }), // moving stats settle within a short run
      tf.layers.reLU(),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
}

/** One SGD-momentum step the way the engine trains: model.apply(training) inside minimize. */
function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, xs: tf.Tensor, labels: tf.Tensor): number {
  const loss = optimizer.minimize(
    () => tf.losses.softmaxCrossEntropy(labels, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
    true,
  ) as tf.Scalar;
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}

describe('training on the wasm backend', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('lowers the loss and learns the brightest-quadrant task', async () => {
    await initBackend('wasm');
    const size = 16;
    const train = quadrantTask(128, size, 7);
    const test = quadrantTask(64, size, 99);
    const model = buildSmallNet(size);
    const optimizer = tf.train.momentum(0.05, 0.9);
    const losses: number[] = [];
    for (let epoch = 0; epoch < 10; epoch++) {
      for (let start = 0; start < 128; start += 32) {
        const [xs, labels] = tf.tidy(() => [train.xs.slice(start, 32), train.labels.slice(start, 32)]);
        losses.push(trainStep(model, optimizer, xs, labels));
        tf.dispose([xs, labels]);
      }
    }
    const first = losses.slice(0, 4).reduce((a, b) => a + b) / 4;
    const last = losses.slice(-4).reduce((a, b) => a + b) / 4;
    assert.ok(Number.isFinite(last), 'loss is not finite');
    assert.ok(last < 0.5 * first, `loss went from ${first.toFixed(3)} to ${last.toFixed(3)}`);
    const predicted = tf.tidy(() => (model.apply(test.xs, { training: false }) as tf.Tensor).argMax(-1).dataSync());
    const accuracy = test.classes.filter((c, i) => predicted[i] === c).length / test.classes.length;
    assert.ok(accuracy >= 0.85, `held-out accuracy ${accuracy}`);
    tf.dispose([train.xs, train.labels, test.xs, test.labels]);
    model.dispose();
    optimizer.dispose();
  });
});

describe('no tensor leaks across 100 training steps', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`keeps tf.memory() constant on ${backend}`, async () => {
      await initBackend(backend);
      assert.strictEqual(tf.getBackend(), backend);
      // cpu is slow: a smaller image there; the same layer kinds run.
      const size = backend === 'cpu' ? 8 : 16;
      const data = quadrantTask(16, size, 3);
      const model = buildSmallNet(size);
      const optimizer = tf.train.momentum(0.01, 0.9);
      trainStep(model, optimizer, data.xs, data.labels); // creates the optimizer's slots
      const before = { ...tf.memory(), backendBuffers: tf.backend().numDataIds() };
      for (let step = 0; step < 100; step++) trainStep(model, optimizer, data.xs, data.labels);
      const after = { ...tf.memory(), backendBuffers: tf.backend().numDataIds() };
      assert.strictEqual(after.numTensors, before.numTensors, 'tensors leaked');
      assert.strictEqual(after.numBytes, before.numBytes, 'bytes leaked');
      // Buffers the engine never sees (intermediates inside our kernels) only show up here.
      assert.strictEqual(after.backendBuffers, before.backendBuffers, 'backend buffers leaked');
      tf.dispose([data.xs, data.labels]);
      model.dispose();
      optimizer.dispose();
    });
  }
});
