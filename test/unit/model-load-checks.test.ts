/**
 * What loadLayersModelFromFile does beyond deserializing: BatchNormalization without gamma/beta
 * (scale: false / center: false, as in Keras InceptionV3) is completed so that tfjs can train it,
 * computing the same function; and a model tfjs builds but cannot run is refused at load.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { deployModel } from '../../src/engine/deploy';
import { PasInputError } from '../../src/engine/errors';
import { loadLayersModelFromFile, saveLayersModelToDir } from '../../src/engine/io';
import { completeBatchNormParameters } from '../../src/engine/io/batchNormDefaults';

type T = tf.SymbolicTensor;

/** conv -> BN(scale false) -> relu -> conv -> BN(center false) -> relu -> GAP -> dense. */
function buildModelWithIncompleteBatchNorms(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 6, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as T;
  x = tf.layers.batchNormalization({ name: 'bn1', scale: false, epsilon: 1e-3 }).apply(x) as T;
  x = tf.layers.activation({ name: 'relu1', activation: 'relu' }).apply(x) as T;
  x = tf.layers.conv2d({ name: 'conv2', filters: 5, kernelSize: 3, padding: 'same', useBias: false }).apply(x) as T;
  x = tf.layers.batchNormalization({ name: 'bn2', center: false, scale: false, epsilon: 1e-3 }).apply(x) as T;
  x = tf.layers.activation({ name: 'relu2', activation: 'relu' }).apply(x) as T;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
  x = tf.layers.dense({ name: 'logits', units: 4 }).apply(x) as T;
  const model = tf.model({ inputs: input, outputs: x, name: 'incomplete_bn' });
  // Non-trivial statistics and weights, so that a wrong gamma/beta or a dropped BN shows.
  for (const layer of model.layers) {
    layer.setWeights(layer.getWeights().map((weight) => tf.randomUniform(weight.shape, 0.3, 1.7, 'float32', 7)));
  }
  return model;
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('loading: BatchNormalization without scale/center, models that do not run', function () {
  this.timeout(60_000);
  let scratch: string;

  before(async () => {
    await tf.setBackend('cpu');
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-load-checks-'));
  });

  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('completes gamma = 1 / beta = 0: the same function bit for bit, trainable, deployable; the file is unchanged', async () => {
    const original = buildModelWithIncompleteBatchNorms();
    const dir = path.join(scratch, 'incomplete-bn');
    await saveLayersModelToDir(original, dir, { overwrite: true });
    const modelJson = path.join(dir, 'model.json');
    const fileBefore = fs.readFileSync(modelJson, 'utf8');

    const loaded = await loadLayersModelFromFile(modelJson);
    try {
      assert.strictEqual(fs.readFileSync(modelJson, 'utf8'), fileBefore, 'the model.json was changed');
      const bn1 = loaded.getLayer('bn1').getConfig();
      const bn2 = loaded.getLayer('bn2').getConfig();
      assert.deepStrictEqual([bn1.scale, bn1.center, bn2.scale, bn2.center], [true, true, true, true]);
      assert.deepStrictEqual(loaded.getLayer('bn2').weights.map((w) => w.originalName).sort(), ['bn2/beta', 'bn2/gamma', 'bn2/moving_mean', 'bn2/moving_variance']);

      const x = tf.randomNormal([3, 8, 8, 3], 0, 1, 'float32', 11);
      const before = original.predict(x) as tf.Tensor;
      const after = loaded.predict(x) as tf.Tensor;
      assert.strictEqual(maxAbsDiff(before, after), 0, 'the completed model computes something else');

      // tfjs 4.22 throws "Cannot read properties of undefined (reading 'read')" here without the fix.
      const trainingOutput = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(loaded.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
        const gammaGrad = grads[(loaded.getLayer('bn1').weights.find((w) => w.originalName === 'bn1/gamma')!.read() as tf.Variable).name];
        return [value.dataSync()[0], gammaGrad ? tf.sum(tf.abs(gammaGrad)).dataSync()[0] : NaN];
      });
      assert.ok(Number.isFinite(trainingOutput[0]) && Number.isFinite(trainingOutput[1]), `training step: ${trainingOutput}`);

      const deployment = await deployModel(loaded, [8, 8, 3]);
      deployment.deployed.dispose();
      const scale = tf.tidy(() => tf.max(tf.abs(before)).dataSync()[0]);
      assert.ok(deployment.maxAbsDiff <= 1e-5 * scale, `deployed differs by ${deployment.maxAbsDiff} (output scale ${scale})`);
      tf.dispose([x, before, after]);
    } finally {
      loaded.dispose();
      original.dispose();
    }
  });

  it('leaves complete BNs, and the input topology object, untouched', () => {
    const topology = { class_name: 'Functional', config: { layers: [{ class_name: 'BatchNormalization', config: { name: 'bn', scale: false, center: true } }] } };
    const specs = [
      { name: 'bn/beta', shape: [2], dtype: 'float32' as const },
      { name: 'bn/moving_mean', shape: [2], dtype: 'float32' as const },
      { name: 'bn/moving_variance', shape: [2], dtype: 'float32' as const },
    ];
    const snapshot = JSON.stringify(topology);
    const result = completeBatchNormParameters({ modelTopology: topology, weightSpecs: specs, weightData: new ArrayBuffer(24) });
    assert.strictEqual(JSON.stringify(topology), snapshot);
    assert.deepStrictEqual(result.completed, [{ layerName: 'bn', added: ['gamma'] }]);
    assert.deepStrictEqual(result.weightSpecs.map((s) => s.name), ['bn/beta', 'bn/moving_mean', 'bn/moving_variance', 'bn/gamma']);
    assert.deepStrictEqual(Array.from(new Float32Array(result.weightData, 24)), [1, 1]);
  });

  it('refuses a model tfjs builds but cannot run, naming the file and the layer', async () => {
    const input = tf.input({ shape: [6, 6, 2], name: 'image' });
    let x = tf.layers.conv2d({ name: 'conv', filters: 3, kernelSize: 3, padding: 'same' }).apply(input) as T;
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
    x = tf.layers.dense({ name: 'logits', units: 4 }).apply(x) as T;
    x = tf.layers.softmax({ name: 'probabilities' }).apply(x) as T;
    const model = tf.model({ inputs: input, outputs: x });
    const dir = path.join(scratch, 'softmax-axis-list');
    await saveLayersModelToDir(model, dir, { overwrite: true });
    model.dispose();
    const modelJson = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
    json.modelTopology.config.layers.find((layer: { name: string }) => layer.name === 'probabilities').config.axis = [1, 1, 8];
    fs.writeFileSync(modelJson, JSON.stringify(json));

    const tensorsBefore = tf.memory().numTensors;
    await assert.rejects(loadLayersModelFromFile(modelJson), (error: unknown) => {
      assert.ok(error instanceof PasInputError, String(error));
      assert.ok(error.message.includes(modelJson), error.message);
      assert.match(error.message, /the model does not run \(at layer 'probabilities'\): .*axis/);
      return true;
    });
    assert.strictEqual(tf.memory().numTensors, tensorsBefore, 'the refused model leaked tensors');
  });
});
