import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { skipDataInputGradients } from '../../src/engine/train/inputGradients';
import { seededTensor } from '../support/tensors';

/**
 * input -> zero padding -> conv (bias, stride 2) -> BN -> conv -> add -> depthwise -> GAP -> dense,
 * plus a second branch: input -> conv (relu) -> add. The first and the branch conv read the data
 * only. tfjs fuses (and differentiates eagerly) only convs with a linear activation: 'first' and
 * 'second'; 'branch' (relu) already runs unfused, and the patch must keep its activation.
 */
function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [9, 9, 3] });
  const padded = tf.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(input) as tf.SymbolicTensor;
  const first = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, name: 'first', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ seed: 2 }) }).apply(padded) as tf.SymbolicTensor;
  const normed = tf.layers.batchNormalization({ name: 'bn' }).apply(first) as tf.SymbolicTensor;
  const second = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'second', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(normed) as tf.SymbolicTensor;
  const branch = tf.layers.conv2d({ filters: 4, kernelSize: 1, strides: 2, padding: 'same', activation: 'relu', name: 'branch', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'add' }).apply([second, branch]) as tf.SymbolicTensor;
  const depthwise = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'depthwise', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(sum) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(depthwise) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 3, name: 'dense', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

/** Gradients of a cross-entropy loss wrt every trainable weight, and the kernels that ran. */
async function gradientsAndKernels(model: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor): Promise<{ grads: Float32Array[]; kernels: string[] }> {
  let grads: Float32Array[] = [];
  const profile = await tf.profile(() => {
    const variables = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const result = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, variables);
    grads = variables.map((v) => Float32Array.from(result.grads[v.name].dataSync()));
    tf.dispose([result.value, ...Object.values(result.grads)]);
  });
  return { grads, kernels: profile.kernels.map((k) => k.name) };
}

describe('no input gradient for convolutions that read the data (train/inputGradients)', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`${backend}: patches exactly the convs fed by data-only layers; weight gradients unchanged; one input gradient fewer per such conv`, async () => {
      await initBackend(backend);
      const x = seededTensor([2, 9, 9, 3], 7);
      const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
      const plain = buildModel();
      const patched = buildModel();
      patched.setWeights(plain.getWeights());
      const predictedBefore = (patched.predict(x) as tf.Tensor).dataSync().slice();

      assert.deepStrictEqual(skipDataInputGradients(patched).sort(), ['branch', 'first']);
      assert.deepStrictEqual(skipDataInputGradients(patched).sort(), ['branch', 'first'], 'a second call finds the same layers');
      // Inference goes through the layer's own (fused) call: the same numbers as before the patch.
      assert.deepStrictEqual((patched.predict(x) as tf.Tensor).dataSync(), predictedBefore);

      const reference = await gradientsAndKernels(plain, x, labels);
      const result = await gradientsAndKernels(patched, x, labels);
      assert.strictEqual(result.grads.length, reference.grads.length);
      // Relative to the largest gradient of the model: 'first' feeds a batch norm, which cancels
      // its bias, so that bias's gradient is rounding noise around 0 on both paths.
      const scale = Math.max(...reference.grads.map((g) => Math.max(...g.map(Math.abs))));
      result.grads.forEach((g, i) => {
        const worst = Math.max(...g.map((v, j) => Math.abs(v - reference.grads[i][j])));
        assert.ok(worst / scale < 1e-5, `weight ${i}: difference ${worst} against a largest gradient of ${scale}`);
      });
      const count = (kernels: string[], name: string) => kernels.filter((k) => k === name).length;
      // The plain model runs the input gradient of the fused 'first' and 'second'; the patched one only of 'second'.
      assert.strictEqual(count(reference.kernels, 'Conv2DBackpropInput'), 2);
      assert.strictEqual(count(result.kernels, 'Conv2DBackpropInput'), 1);
      assert.strictEqual(count(result.kernels, 'Conv2DBackpropFilter'), 3);
      tf.dispose([x, labels]);
      plain.dispose();
      patched.dispose();
    });
  }

  it('leaves a model alone whose first layer has weights upstream of its convs (a dense layer feeding a reshape)', async () => {
    await initBackend('cpu');
    const input = tf.input({ shape: [12] });
    const dense = tf.layers.dense({ units: 48 }).apply(input) as tf.SymbolicTensor;
    const image = tf.layers.reshape({ targetShape: [4, 4, 3] }).apply(dense) as tf.SymbolicTensor;
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3 }).apply(image) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: conv });
    assert.deepStrictEqual(skipDataInputGradients(model), []);
    model.dispose();
  });
});
