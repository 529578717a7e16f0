/**
 * BatchNormalization layers training on wasm run as two fused kernels and update their moving
 * averages in JS (src/engine/backends/batchnorm-moving-averages.ts, batchnorm-training.ts): the
 * output, the gradients and the moving statistics must be those of tfjs-layers' own call (to
 * float32 rounding: the fused kernels sum in another order), with far fewer kernel calls.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { stockBatchNormalizationCall } from '../../src/engine/backends/batchnorm-moving-averages';
import { seededValues } from '../support/tensors';

function seeded(shape: number[], seed: number, offset = 0): tf.Tensor {
  return tf.add(tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape), offset);
}

/** A BatchNormalization layer with seeded weights and moving statistics. */
function seededLayer(shape: number[], momentum: number): tf.layers.Layer {
  const channels = shape[shape.length - 1];
  const layer = tf.layers.batchNormalization({ momentum, epsilon: 1e-3 });
  layer.build([null, ...shape.slice(1)]);
  layer.setWeights([seeded([channels], 1, 1.5), seeded([channels], 2), seeded([channels], 3), tf.abs(seeded([channels], 4, 1))]);
  return layer;
}

type Call = ReturnType<typeof stockBatchNormalizationCall>;

/** Output, gradients wrt input, gamma and beta, and the new moving statistics, of one training call. */
function trainOnce(call: Call | undefined, shape: number[], momentum: number): Float32Array[] {
  const layer = seededLayer(shape, momentum);
  const x = seeded(shape, 5, 0.5);
  const weights = seeded(shape, 6);
  const [gamma, beta] = [layer.weights[0].read(), layer.weights[1].read()];
  const apply = (input: tf.Tensor) => (call ? call.call(layer, input, { training: true }) : layer.apply(input, { training: true })) as tf.Tensor;
  const output = apply(x);
  const movingAfterForward = layer.getWeights().slice(2).map((t) => t.clone());
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(weights, apply(x))) as tf.Scalar, [gamma as tf.Variable, beta as tf.Variable]);
  const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(weights, apply(input))))(x);
  const arrays = [output, dx, ...Object.values(grads), ...movingAfterForward].map((t) => Float32Array.from(t.dataSync() as Float32Array));
  tf.dispose([output, dx, x, weights, ...Object.values(grads), ...movingAfterForward]);
  layer.weights.forEach((w) => w.dispose());
  return arrays;
}

describe('BatchNormalization training on wasm: moving averages in JS', () => {
  before(() => initBackend('wasm'));

  /** max |actual - expected| / max |expected|. */
  const relativeError = (actual: Float32Array, expected: Float32Array) => {
    let diff = 0;
    let scale = 0;
    expected.forEach((v, k) => {
      diff = Math.max(diff, Math.abs(actual[k] - v));
      scale = Math.max(scale, Math.abs(v));
    });
    return diff / Math.max(scale, 1e-12);
  };

  for (const shape of [[6, 5, 7, 4], [9, 3, 8], [12, 5]]) {
    it(`rank ${shape.length}: output, gradients and moving statistics equal tfjs-layers' call`, () => {
      for (const momentum of [0.99, 0.9, 0.1]) {
        const ours = trainOnce(undefined, shape, momentum);
        const stock = trainOnce(stockBatchNormalizationCall(), shape, momentum);
        const names = ['output', 'dx', 'dgamma', 'dbeta', 'moving mean', 'moving variance'];
        stock.forEach((expected, i) => {
          assert.equal(ours[i].length, expected.length);
          const error = relativeError(ours[i], expected);
          assert.ok(error <= 1e-5, `${names[i]} (momentum ${momentum}): relative error ${error.toExponential(2)}`);
        });
        // The moving statistics did move (the comparison is not between two untouched values).
        const untouched = seededLayer(shape, momentum).getWeights().slice(2).map((t) => t.dataSync());
        assert.ok(untouched[0].some((v, k) => v !== stock[4][k]), 'the moving mean did not change');
      }
    });
  }

  it('runs a third of the stock call\'s kernels or fewer (fused kernels, no taped moving-average ops)', async () => {
    const layer = seededLayer([8, 6, 6, 16], 0.99);
    const x = seeded([8, 6, 6, 16], 7);
    const count = async (call?: Call) =>
      (await tf.profile(() => tf.grad((input: tf.Tensor) => tf.sum((call ? call.call(layer, input, { training: true }) : layer.apply(input, { training: true })) as tf.Tensor))(x))).kernels.length;
    const ours = await count();
    const stock = await count(stockBatchNormalizationCall());
    assert.ok(ours * 3 <= stock, `kernels per training step: ${ours} (fused kernels, JS moving averages) vs ${stock} (stock)`);
    x.dispose();
    layer.weights.forEach((w) => w.dispose());
  });
});
