/**
 * The deploy-time speed folds (src/engine/transform/deployFolds.ts): dropout skipped, a
 * ZeroPadding2D that is exactly TensorFlow's 'same' padding taken into the conv, a ReLU taken into
 * the conv before it. Properties: deployed == training-time (and == masked, after pruning) within
 * 1e-5 of the output scale, the folded layers are gone exactly where the fold is exact and stay
 * where it is not, and the deployed model loads in stock tfjs.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { deployGraph } from '../../src/engine/deploy';
import { saveLayersModelToDir } from '../../src/engine/io';
import { graphFromModel, ModelGraph, modelFromGraph } from '../../src/engine/graph/modelGraph';
import { samePadding } from '../../src/engine/transform/deployFolds';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { expectRelativelyClose, loadWithStockTfjs } from '../support/families-checks';
import { predictGraph, predictModel, randomInputFor, randomizeBatchNorm, randomlyMasked } from '../support/tensors';

const L = tf.layers;
type Sym = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: Sym) => layer.apply(x) as Sym;

/**
 * A MobileNetV2-like trunk on a `size` x `size` map: Keras' correct_pad (0 before, 1 after) before
 * stride-2 convs, conv-BN-ReLU6, conv-BN-ReLU, a dropout, a depthwise conv on a padded map, and a
 * ReLU that is a model output.
 */
function buildTrunk(size: number, pad: [[number, number], [number, number]]): tf.LayersModel {
  // Seeded kernels: unseeded ones depend on which tests ran before, and some draws left every
  // output of the final ReLU at zero, where an equality check shows nothing.
  let seed = 1000 + size;
  const kernel = () => tf.initializers.glorotNormal({ seed: seed++ });
  const input = tf.input({ shape: [size, size, 3], name: 'image' });
  let x = apply(L.zeroPadding2d({ name: 'stem_pad', padding: pad }), input);
  x = apply(L.conv2d({ name: 'stem', kernelInitializer: kernel(), filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }), x);
  x = apply(L.reLU({ name: 'stem_relu6', maxValue: 6 }), apply(L.batchNormalization({ name: 'stem_bn' }), x));
  x = apply(L.conv2d({ name: 'expand', kernelInitializer: kernel(), filters: 12, kernelSize: 1, useBias: false }), x);
  x = apply(L.reLU({ name: 'expand_relu' }), apply(L.batchNormalization({ name: 'expand_bn' }), x));
  x = apply(L.dropout({ name: 'drop', rate: 0.5 }), x);
  x = apply(L.zeroPadding2d({ name: 'dw_pad', padding: [[1, 1], [1, 1]] }), x);
  x = apply(L.depthwiseConv2d({ name: 'dw', depthwiseInitializer: kernel(), kernelSize: 3, padding: 'valid', useBias: false }), x);
  x = apply(L.activation({ name: 'dw_relu', activation: 'relu' }), apply(L.batchNormalization({ name: 'dw_bn' }), x));
  x = apply(L.conv2d({ name: 'project', kernelInitializer: kernel(), filters: 6, kernelSize: 1, biasInitializer: tf.initializers.constant({ value: 0.5 }) }), x);
  // A ReLU that is a model output keeps its layer (the output keeps its name).
  return tf.model({ inputs: input, outputs: apply(L.reLU({ name: 'out_relu' }), x) });
}

async function expectDeployedEqual(training: ModelGraph, deployed: ModelGraph, size: number, label: string): Promise<void> {
  const input = randomInputFor(training, 2, size);
  try {
    expectRelativelyClose(await predictGraph(deployed, input), await predictGraph(training, input), label);
  } finally {
    input.dispose();
  }
}

const classes = (graph: ModelGraph) => graph.nodes.map((n) => n.className);
const layer = (graph: ModelGraph, name: string) => graph.nodes.find((n) => n.layerName === name);

describe('engine: deploy folds keep outputs equal and remove what they can', () => {
  let work: string;
  before(async () => {
    await tf.setBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-deploy-folds-'));
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("samePadding is TensorFlow's rule: a conv on the map padded so equals the 'same' conv, for every size, kernel and stride", () => {
    for (let inSize = 1; inSize <= 9; inSize++) {
      for (const kernel of [1, 2, 3, 5]) {
        for (const stride of [1, 2, 3]) {
          const out = Math.ceil(inSize / stride);
          const pad = samePadding(inSize, out, kernel, stride)!;
          const x = tf.randomUniform([1, inSize, inSize, 2], -1, 1, 'float32', inSize) as tf.Tensor4D;
          const k = tf.randomUniform([kernel, kernel, 2, 3], -1, 1, 'float32', kernel) as tf.Tensor4D;
          const same = tf.conv2d(x, k, stride, 'same');
          const padded = tf.conv2d(tf.pad(x, [[0, 0], pad, pad, [0, 0]]) as tf.Tensor4D, k, stride, 'valid');
          assert.deepStrictEqual(padded.shape, same.shape, `in ${inSize} k ${kernel} s ${stride}`);
          const diff = tf.max(tf.abs(tf.sub(same, padded))).dataSync()[0];
          assert.ok(diff <= 1e-5 * Math.max(1, tf.max(tf.abs(same)).dataSync()[0]), `in ${inSize} k ${kernel} s ${stride}: ${diff}`);
          tf.dispose([x, k, same, padded]);
          assert.strictEqual(samePadding(inSize, out + 1, kernel, stride), undefined, 'another output size is not same');
        }
      }
    }
  });

  for (const size of [16, 15]) {
    it(`${size}x${size} trunk: deployed == training-time; exact pads, the ReLU and the dropout folded, ReLU6 and the output ReLU kept`, async () => {
      const model = buildTrunk(size, size % 2 === 0 ? [[0, 1], [0, 1]] : [[1, 1], [1, 1]]);
      const graph = graphFromModel(model);
      model.dispose();
      randomizeBatchNorm(graph, size);
      const deployed = reparameterizeGraph(graph);
      await expectDeployedEqual(graph, deployed, size, `${size}: deployed vs training-time`);
      assert.ok(!classes(deployed).includes('ZeroPadding2D'), `pads left: ${classes(deployed)}`);
      assert.ok(!classes(deployed).includes('Dropout'));
      assert.strictEqual(layer(deployed, 'stem')!.config.padding, 'same');
      assert.strictEqual(layer(deployed, 'dw')!.config.padding, 'same');
      assert.strictEqual(layer(deployed, 'expand')!.config.activation, 'relu');
      assert.strictEqual(layer(deployed, 'dw')!.config.activation, 'relu');
      assert.ok(layer(deployed, 'stem_relu6'), 'ReLU6 stays a layer (tfjs-layers would run relu6 as a slow minimum)');
      assert.strictEqual(layer(deployed, 'stem')!.config.activation, 'linear');
      assert.ok(layer(deployed, 'out_relu') && deployed.outputIds.includes('out_relu'), 'the output layer keeps its name');
    });
  }

  it("a pad that is not TensorFlow's 'same' for the shapes at hand stays (symmetric pad before stride 2 on an even map; TF pad on an odd one)", async () => {
    for (const [size, pad] of [[16, [[1, 1], [1, 1]]], [15, [[0, 1], [0, 1]]], [16, [[0, 1], [1, 1]]]] as Array<[number, [[number, number], [number, number]]]>) {
      const model = buildTrunk(size, pad);
      const graph = graphFromModel(model);
      model.dispose();
      randomizeBatchNorm(graph, size + 1);
      const deployed = reparameterizeGraph(graph);
      await expectDeployedEqual(graph, deployed, size, `${size} ${JSON.stringify(pad)}: deployed vs training-time`);
      assert.ok(layer(deployed, 'stem_pad'), `${size} ${JSON.stringify(pad)}: the stem pad is kept`);
      assert.strictEqual(layer(deployed, 'stem')!.config.padding, 'valid');
      assert.ok(!layer(deployed, 'dw_pad'), 'the stride-1 pad of 1 is same padding at any size');
    }
  });

  it("relu6 computed as tfjs-layers' slow minimum (Activation('relu6'), a conv's or dense's 'relu6') becomes ReLU(max_value 6) layers, outputs equal", async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    let x = apply(L.conv2d({ name: 'conv_a', filters: 4, kernelSize: 3, padding: 'same', useBias: false }), input);
    x = apply(L.activation({ name: 'act_relu6', activation: 'relu6' }), apply(L.batchNormalization({ name: 'bn_a' }), x));
    x = apply(L.conv2d({ name: 'conv_b', filters: 5, kernelSize: 3, padding: 'same', activation: 'relu6' }), x);
    x = apply(L.dense({ name: 'dense_relu6', units: 16, activation: 'relu6', biasInitializer: 'ones' }), apply(L.globalAveragePooling2d({ name: 'gap' }), x));
    const model = tf.model({ inputs: input, outputs: apply(L.dense({ name: 'head', units: 3 }), x) });
    const graph = graphFromModel(model);
    model.dispose();
    randomizeBatchNorm(graph, 9);
    // Weights scaled up so that values above 6 are likely and the clip matters.
    for (const layerName of ['conv_a', 'conv_b', 'dense_relu6']) {
      const w = graph.weights.get(layerName)!.kernel.values;
      for (let i = 0; i < w.length; i++) w[i] *= 8;
    }
    const deployed = reparameterizeGraph(graph);
    await expectDeployedEqual(graph, deployed, 8, 'relu6 rewrites');
    const slow = deployed.nodes.filter((n) => String(n.config.activation ?? '').toLowerCase() === 'relu6').map((n) => n.id);
    assert.deepStrictEqual(slow, [], 'no relu6 activation is left');
    const relu6Layers = deployed.nodes.filter((n) => n.className === 'ReLU' && n.config.max_value === 6).map((n) => n.id);
    assert.deepStrictEqual(relu6Layers.sort(), ['act_relu6', 'conv_b_relu6', 'dense_relu6_relu6']);
  });

  it('a ReLU after a conv whose output has another consumer stays a layer', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = apply(L.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same' }), input);
    const relu = apply(L.reLU({ name: 'relu' }), conv);
    const model = tf.model({ inputs: input, outputs: apply(L.add({ name: 'sum' }), [relu, conv] as unknown as Sym) });
    const graph = graphFromModel(model);
    model.dispose();
    const deployed = reparameterizeGraph(graph);
    assert.ok(layer(deployed, 'relu'));
    assert.strictEqual(layer(deployed, 'conv')!.config.activation, 'linear');
    await expectDeployedEqual(graph, deployed, 8, 'shared conv output');
  });

  it('pruned and deployed == masked, and the deployed model loads in stock tfjs with the same outputs', async () => {
    const model = buildTrunk(16, [[0, 1], [0, 1]]);
    const plain = graphFromModel(model);
    model.dispose();
    randomizeBatchNorm(plain, 3);
    const masked = randomlyMasked(plain, 4, 0.4).graph;
    const reference = await modelFromGraph(masked);
    const deployment = await deployGraph(masked, reference, [16, 16, 3]);
    const input = randomInputFor(plain, 2, 16);
    try {
      const expected = predictModel(reference, input);
      expectRelativelyClose(predictModel(deployment.deployed, input), expected, 'pruned deployed vs masked');
      assert.ok(!classes(deployment.deployedGraph).includes('ZeroPadding2D'));
      const dir = path.join(work, 'trunk');
      await saveLayersModelToDir(deployment.deployed, dir, { overwrite: true });
      const stock = await loadWithStockTfjs(dir);
      expectRelativelyClose(predictModel(stock, input), expected, 'stock tfjs load vs masked');
      stock.dispose();
    } finally {
      input.dispose();
      reference.dispose();
      deployment.deployed.dispose();
    }
  });
});
