import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import { deployGraph, deployModel } from '../../src/engine/deploy';
import { graphFromModel, modelFromGraph } from '../../src/engine/graph/modelGraph';
import { exportOnnxBytes, importOnnxModel, readOnnxModel } from '../../src/engine/onnx';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { KerasNormalization } from '../../src/engine/layers/kerasNormalization';
import { makeTempDir } from '../support/cli';
import { FixtureName, fixturePath, fixtureReference, FIXTURES, nchwToNhwc, relativeError, runOnnx } from '../support/onnx';
import { predictModel, randomizeBatchNorm, randomlyMasked, seededValues } from '../support/tensors';

const TOLERANCE = 1e-4;

/** The engine's output and onnxruntime's on the exported bytes, for one seeded NCHW batch. */
async function compareWithOnnxRuntime(model: tf.LayersModel, bytes: Uint8Array, seed: number, batch = 3): Promise<number> {
  const [, h, w, c] = model.inputs[0].shape as number[];
  const shape = [batch, c, h, w];
  const values = seededValues(batch * c * h * w, seed);
  const onnx = await runOnnx(bytes, values, shape);
  const input = tf.tensor(nchwToNhwc(values, shape), [batch, h, w, c]);
  const output = predictModel(model, input);
  input.dispose();
  assert.deepEqual([...onnx.outputShape], [batch, ...(model.outputs[0].shape.slice(1) as number[])]);
  return relativeError(onnx.output, output);
}

describe('ONNX export of deployed models', function () {
  this.timeout(180_000);
  let work: string;
  before(() => {
    work = makeTempDir('pas-onnx-export-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  for (const name of FIXTURES) {
    it(`${name}: the deployed ONNX runs in onnxruntime and matches the deployed tfjs model`, async () => {
      const { model, info } = await importOnnxModel(fixturePath(name));
      const ref = fixtureReference(name);
      const deployment = await deployModel(model, [ref.inputShape[2], ref.inputShape[3], ref.inputShape[1]]);
      const bytes = exportOnnxBytes(deployment.deployed, { source: info });
      const error = await compareWithOnnxRuntime(deployment.deployed, bytes, 23);
      assert.ok(error <= TOLERANCE, `relative error ${error} > ${TOLERANCE}`);
      // And through the whole chain: PyTorch's own output from the written file.
      const roundTrip = await runOnnx(bytes, Float32Array.from(ref.input), ref.inputShape);
      assert.ok(relativeError(roundTrip.output, ref.output) <= TOLERANCE);
      assert.deepEqual(roundTrip.inputNames, [info.inputName]);
      assert.deepEqual(roundTrip.outputNames, [info.outputName]);
      model.dispose();
      deployment.deployed.dispose();
    });
  }

  const prunable: FixtureName[] = ['resnet18-slim', 'mobilenetv2'];
  for (const name of prunable) {
    it(`${name}: a pruned deployment (random masks) exports exactly`, async () => {
      const { model, info } = await importOnnxModel(fixturePath(name));
      const { graph: masked, dropped } = randomlyMasked(graphFromModel(model), 5);
      assert.ok(dropped > 0);
      const maskedModel = await modelFromGraph(masked);
      const [, h, w, c] = model.inputs[0].shape as number[];
      const deployment = await deployGraph(masked, maskedModel, [h, w, c]);
      assert.ok(deployment.maxAbsDiff <= 1e-4, `deployed vs masked ${deployment.maxAbsDiff}`);
      assert.ok(deployment.deployedSummary.totalMacs < deployment.trainingSummary.totalMacs, 'pruning removed MACs');
      const bytes = exportOnnxBytes(deployment.deployed, { source: info });
      const error = await compareWithOnnxRuntime(deployment.deployed, bytes, 29);
      assert.ok(error <= TOLERANCE, `relative error ${error} > ${TOLERANCE}`);
      [model, maskedModel, deployment.deployed].forEach((m) => m.dispose());
    });
  }

  it("a model with Keras' Normalization layer exports it as Sub and Div, matching onnxruntime", async () => {
    const input = tf.input({ shape: [6, 6, 3] });
    let x = new KerasNormalization({ name: 'normalization' }).apply(input) as tf.SymbolicTensor;
    x = tf.layers.conv2d({ name: 'stem', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor });
    model.getLayer('normalization').setWeights([tf.tensor1d([0.5, -1, 2]), tf.tensor1d([0.04, 4, 0.25]), tf.scalar(10)]);
    const deployment = await deployModel(model, [6, 6, 3]);
    assert.ok(deployment.deployed.layers.some((l) => l.getClassName() === 'Normalization'));
    const bytes = exportOnnxBytes(deployment.deployed);
    const error = await compareWithOnnxRuntime(deployment.deployed, bytes, 31);
    assert.ok(error <= TOLERANCE, `relative error ${error} > ${TOLERANCE}`);
    // And back: the importer reads (x - mean) / std by constants as Normalization layers.
    const file = path.join(work, 'normalization.onnx');
    fs.writeFileSync(file, bytes);
    const reimported = (await importOnnxModel(file)).model;
    assert.deepEqual(reimported.layers.filter((l) => l.getClassName() === 'Normalization').length, 2);
    const again = await compareWithOnnxRuntime(reimported, bytes, 37);
    assert.ok(again <= TOLERANCE, `re-imported: relative error ${again} > ${TOLERANCE}`);
    [model, deployment.deployed, reimported].forEach((m) => m.dispose());
  });

  it('a TF.js builtin (RepVGG, reparameterized with BN folding and padding) exports as NCHW ONNX with a dynamic batch', async () => {
    const model = buildBuiltin('builtin:residual-cnn', {});
    const graph = graphFromModel(model);
    randomizeBatchNorm(graph, 3);
    const trained = await modelFromGraph(graph);
    const [, h, w, c] = trained.inputs[0].shape as number[];
    const deployment = await deployGraph(graph, trained, [h, w, c]);
    const bytes = exportOnnxBytes(deployment.deployed);
    for (const batch of [1, 5]) {
      const error = await compareWithOnnxRuntime(deployment.deployed, bytes, 31 + batch, batch);
      assert.ok(error <= TOLERANCE, `batch ${batch}: relative error ${error} > ${TOLERANCE}`);
    }
    const file = path.join(work, 'residual.onnx');
    fs.writeFileSync(file, bytes);
    const written = readOnnxModel(file);
    assert.equal(written.opset, 13);
    assert.deepEqual(written.inputs.map((i) => i.name), ['input']);
    assert.deepEqual(written.inputs[0].shape, ['batch', c, h, w]);
    assert.deepEqual(written.outputs[0].shape, ['batch', 10]);
    [model, trained, deployment.deployed].forEach((m) => m.dispose());
  });

  it('refuses, naming the layer, a layer class with no ONNX mapping (before anything is written)', async () => {
    const input = tf.input({ shape: [4, 4, 3] });
    const y = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'conv' }).apply(input) as tf.SymbolicTensor;
    const z = tf.layers.activation({ activation: 'softplus', name: 'soft' }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(z) as tf.SymbolicTensor });
    assert.throws(() => exportOnnxBytes(model), /layer 'soft' \(Activation\) cannot be written as ONNX: activation 'softplus'/);
    model.dispose();
  });
});
