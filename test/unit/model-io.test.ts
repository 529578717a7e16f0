import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../../src/engine/errors';
import { GroupedConv2D } from '../../src/engine/layers/groupedConv';
import { KerasNormalization } from '../../src/engine/layers/kerasNormalization';
import {
  loadLayersModelFromFile,
  readModelArtifacts,
  readModelTopology,
  saveLayersModelToDir,
  writeFileAtomic,
} from '../../src/engine/io';

// The fs module object itself: the `import * as fs` namespace has read-only bindings.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs: typeof fs = require('fs');

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'models');

let scratchRoot: string;
let scratchCount = 0;

/** A fresh empty folder under this test run's temp root. */
function scratchDir(label: string): string {
  const dir = path.join(scratchRoot, `${label}-${scratchCount++}`);
  fs.mkdirSync(dir);
  return dir;
}

/** Gives every weight distinct random values, so a weight loaded into the wrong variable shows. */
function randomizeWeights(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    // Positive values keep BatchNormalization variances valid.
    layer.setWeights(layer.getWeights().map((weight) => tf.randomUniform(weight.shape, 0.5, 1.5)));
  }
}

/** Conv2D, BN, ReLU, a residual Add, both poolings, Flatten and Dense, with named layers. */
function buildFunctionalModel(): tf.LayersModel {
  const image = tf.input({ shape: [8, 8, 3], name: 'image' });
  const conv1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv1' }).apply(image);
  const bn1 = tf.layers.batchNormalization({ name: 'bn1' }).apply(conv1);
  const relu1 = tf.layers.reLU({ name: 'relu1' }).apply(bn1) as tf.SymbolicTensor;
  const conv2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv2' }).apply(relu1);
  const bn2 = tf.layers.batchNormalization({ name: 'bn2' }).apply(conv2) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'add' }).apply([relu1, bn2]);
  const relu2 = tf.layers.reLU({ name: 'relu2' }).apply(sum);
  const pooled = tf.layers.maxPooling2d({ poolSize: 2, name: 'maxpool' }).apply(relu2);
  const averaged = tf.layers.averagePooling2d({ poolSize: 2, name: 'avgpool' }).apply(pooled);
  const flat = tf.layers.flatten({ name: 'flatten' }).apply(averaged);
  const logits = tf.layers.dense({ units: 3, name: 'fc' }).apply(flat) as tf.SymbolicTensor;
  const model = tf.model({ inputs: image, outputs: logits, name: 'residual' });
  randomizeWeights(model);
  return model;
}

function buildSequentialModel(): tf.Sequential {
  const model = tf.sequential({ name: 'plain' });
  model.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, activation: 'relu', name: 'conv' }));
  model.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  model.add(tf.layers.dense({ units: 2, name: 'fc' }));
  randomizeWeights(model);
  return model;
}

function predictValues(model: tf.LayersModel, input: tf.Tensor): number[] {
  return Array.from((model.predict(input) as tf.Tensor).dataSync());
}

/** Asserts that both models give bit-identical outputs on the same random input. */
function assertSamePredictions(expected: tf.LayersModel, actual: tf.LayersModel): void {
  const inputShape = expected.inputs[0].shape.map((dim) => dim ?? 2);
  const input = tf.randomNormal(inputShape);
  const want = predictValues(expected, input);
  assert.ok(want.every(Number.isFinite) && want.some((value) => value !== 0), 'reference output is degenerate');
  assert.deepStrictEqual(predictValues(actual, input), want);
}

/** Saves the small functional model with our saver and returns its model.json path. */
async function savedFunctionalModel(): Promise<string> {
  const dir = path.join(scratchDir('model'), 'residual');
  return (await saveLayersModelToDir(buildFunctionalModel(), dir)).modelJsonPath;
}

function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value));
}

/** Edits a saved model.json in place. */
function editModelJson(modelJsonPath: string, edit: (json: any) => void): void {
  const json = readJson(modelJsonPath);
  edit(json);
  writeJson(modelJsonPath, json);
}

function layerNamed(json: any, name: string): any {
  const layer = json.modelTopology.config.layers.find((candidate: any) => candidate.name === name);
  assert.ok(layer, `no layer ${name} in the fixture`);
  return layer;
}

/** Byte offset of a weight in the (single) shard our saver writes. */
function weightOffset(modelJsonPath: string, weightName: string): number {
  let offset = 0;
  for (const spec of readJson(modelJsonPath).weightsManifest[0].weights) {
    if (spec.name === weightName) return offset;
    offset += spec.shape.reduce((product: number, dim: number) => product * dim, 1) * 4;
  }
  throw new Error(`no weight ${weightName}`);
}

/** Runs `action` and returns the PasInputError it must throw. */
async function expectInputError(action: () => Promise<unknown>): Promise<PasInputError> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof PasInputError, `expected a PasInputError, got ${(error as Error)?.stack ?? error}`);
    return error;
  }
  assert.fail('expected a PasInputError, but the call succeeded');
}

/** Asserts the error names `file` and matches every pattern. */
function assertMessage(error: PasInputError, file: string, ...patterns: RegExp[]): void {
  assert.strictEqual(error.file, file);
  assert.ok(error.message.startsWith(`${file}: `), error.message);
  for (const pattern of patterns) assert.match(error.reason, pattern);
}

type PathSpy = { opened: string[]; restore: () => void };

/** Records every path passed to the fs functions that open or read files. */
function spyOnFileOpens(): PathSpy {
  const opened: string[] = [];
  const restorers: (() => void)[] = [];
  const wrap = (target: any, key: string): void => {
    const original = target[key];
    target[key] = function (this: unknown, file: unknown, ...rest: unknown[]) {
      opened.push(String(file));
      return original.call(this, file, ...rest);
    };
    restorers.push(() => (target[key] = original));
  };
  for (const key of ['open', 'readFile']) wrap(fs.promises, key);
  for (const key of ['openSync', 'readFileSync', 'createReadStream', 'open', 'readFile']) wrap(nodeFs, key);
  return { opened, restore: () => restorers.forEach((restore) => restore()) };
}

/** Entries of `dir` that look like leftovers of an atomic write. */
function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => /\.(tmp|old)-/.test(name));
}

/**
 * Copies a hand-written converter-style fixture to a temp folder and writes its shard with value
 * `i * 0.01 + w` for element i of weight number w (BN variances stay positive), returning the
 * model.json path and the values written per weight.
 */
function materializeFixture(name: string): { modelJsonPath: string; valuesByWeight: Map<string, number[]> } {
  const dir = scratchDir(name);
  const modelJsonPath = path.join(dir, 'model.json');
  fs.copyFileSync(path.join(FIXTURES, name, 'model.json'), modelJsonPath);
  const [group] = readJson(modelJsonPath).weightsManifest;
  const valuesByWeight = new Map<string, number[]>();
  const all: number[] = [];
  group.weights.forEach((spec: { name: string; shape: number[] }, weightIndex: number) => {
    const count = spec.shape.reduce((product, dim) => product * dim, 1);
    const values = Array.from({ length: count }, (_, i) => Math.fround(i * 0.01 + weightIndex + 1));
    valuesByWeight.set(spec.name, values);
    all.push(...values);
  });
  fs.writeFileSync(path.join(dir, group.paths[0]), Buffer.from(new Float32Array(all).buffer));
  return { modelJsonPath, valuesByWeight };
}

describe('model IO (src/engine/io)', () => {
  before(() => {
    scratchRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-model-io-'));
  });
  after(() => {
    fs.rmSync(scratchRoot, { recursive: true, force: true });
  });

  describe('round trips', () => {
    it('loads a functional model saved by saveLayersModelToDir with identical predictions', async () => {
      const model = buildFunctionalModel();
      const dir = path.join(scratchDir('roundtrip'), 'out');
      const saved = await saveLayersModelToDir(model, dir);
      assert.deepStrictEqual(saved, { modelJsonPath: path.join(dir, 'model.json'), weightsPath: path.join(dir, 'weights.bin') });
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
      const json = readJson(saved.modelJsonPath);
      assert.strictEqual(json.format, 'layers-model');
      assert.deepStrictEqual(json.weightsManifest.map((group: any) => group.paths), [['weights.bin']]);
      const loaded = await loadLayersModelFromFile(saved.modelJsonPath);
      assert.deepStrictEqual(loaded.layers.map((layer) => layer.getClassName()), model.layers.map((layer) => layer.getClassName()));
      assertSamePredictions(model, loaded);
    });

    it("loads a model written by tfjs's own model.save with identical predictions", async () => {
      const model = buildFunctionalModel();
      const dir = scratchDir('tfjs-save');
      await model.save(
        tf.io.withSaveHandler(async (artifacts) => {
          // The layout tfjs-node's file:// handler writes.
          writeJson(path.join(dir, 'model.json'), {
            modelTopology: artifacts.modelTopology,
            format: artifacts.format,
            generatedBy: artifacts.generatedBy,
            convertedBy: artifacts.convertedBy,
            weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs }],
          });
          fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData!)));
          return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
        }),
      );
      assertSamePredictions(model, await loadLayersModelFromFile(path.join(dir, 'model.json')));
    });

    it('loads a Sequential model, also with the legacy bare-list config', async () => {
      const model = buildSequentialModel();
      const { modelJsonPath } = await saveLayersModelToDir(model, path.join(scratchDir('seq'), 'out'));
      assertSamePredictions(model, await loadLayersModelFromFile(modelJsonPath));

      editModelJson(modelJsonPath, (json) => {
        assert.ok(Array.isArray(json.modelTopology.config.layers));
        json.modelTopology.config = json.modelTopology.config.layers;
      });
      assertSamePredictions(model, await loadLayersModelFromFile(modelJsonPath));
    });

    it("loads Keras' Conv2D with groups > 1 (RegNet, ResNeXt) as the engine's GroupedConv2D, with identical predictions", async () => {
      const input = tf.input({ shape: [6, 6, 8] });
      let x = new GroupedConv2D({ name: 'grouped', filters: 12, kernelSize: 3, padding: 'same', groups: 4, useBias: true }).apply(input) as tf.SymbolicTensor;
      x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as tf.SymbolicTensor;
      x = new GroupedConv2D({ name: 'grouped_strided', filters: 6, kernelSize: 3, strides: 2, groups: 3, useBias: false, activation: 'relu' }).apply(x) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor });
      // Non-trivial weights: glorot kernels, and a bias.
      model.getLayer('grouped').setWeights([model.getLayer('grouped').getWeights()[0], tf.linspace(-1, 1, 12)]);
      const { modelJsonPath } = await saveLayersModelToDir(model, path.join(scratchDir('grouped'), 'out'));
      // As the Keras converter writes it: class Conv2D, the grouped kernel, `groups` in the config.
      editModelJson(modelJsonPath, (json) => {
        for (const layer of json.modelTopology.config.layers) {
          if (layer.class_name !== 'GroupedConv2D') continue;
          layer.class_name = 'Conv2D';
          Object.assign(layer.config, { data_format: 'channels_last', kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } } });
        }
      });
      assert.deepStrictEqual(readJson(modelJsonPath).modelTopology.config.layers.filter((l: any) => l.config.groups).map((l: any) => l.class_name), ['Conv2D', 'Conv2D']);
      const loaded = await loadLayersModelFromFile(modelJsonPath);
      assert.deepStrictEqual(loaded.layers.filter((l) => l.name.startsWith('grouped')).map((l) => l.getClassName()), ['GroupedConv2D', 'GroupedConv2D']);
      assertSamePredictions(model, loaded);
    });

    it("loads Keras' Normalization layer (keras.applications EfficientNet) with its adapted mean, variance and count", async () => {
      const input = tf.input({ shape: [5, 5, 3] });
      let x = new KerasNormalization({ name: 'normalization' }).apply(input) as tf.SymbolicTensor;
      x = tf.layers.conv2d({ name: 'stem', filters: 4, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor });
      const mean = [0.485, 0.456, 0.406];
      const variance = [0.229 ** 2, 0.224 ** 2, 0.225 ** 2];
      model.getLayer('normalization').setWeights([tf.tensor1d(mean), tf.tensor1d(variance), tf.scalar(1000)]);
      const { modelJsonPath } = await saveLayersModelToDir(model, path.join(scratchDir('normalization'), 'out'));
      // As the converter writes Keras' int64 count: int32 (same 4 bytes, rewritten in the shard).
      editModelJson(modelJsonPath, (json) => {
        const spec = json.weightsManifest[0].weights.find((w: any) => w.name === 'normalization/count');
        const shard = path.join(path.dirname(modelJsonPath), json.weightsManifest[0].paths[0]);
        const bytes = fs.readFileSync(shard);
        const offset = json.weightsManifest[0].weights.slice(0, json.weightsManifest[0].weights.indexOf(spec)).reduce((sum: number, w: any) => sum + 4 * w.shape.reduce((a: number, b: number) => a * b, 1), 0);
        bytes.writeInt32LE(1000, offset);
        fs.writeFileSync(shard, bytes);
        spec.dtype = 'int32';
      });
      const json = readJson(modelJsonPath);
      assert.strictEqual(json.modelTopology.config.layers[1].class_name, 'Normalization');
      assert.deepStrictEqual(json.weightsManifest[0].weights.filter((w: any) => w.name.startsWith('normalization/')).map((w: any) => [w.name, w.dtype]), [['normalization/mean', 'float32'], ['normalization/variance', 'float32'], ['normalization/count', 'int32']]);
      const loaded = await loadLayersModelFromFile(modelJsonPath);
      assertSamePredictions(model, loaded);
      assert.strictEqual((loaded.getLayer('normalization').getWeights()[2].dataSync() as Float32Array)[0], 1000);
      // Keras' formula: (x - mean) / sqrt(variance), per channel.
      const probe = tf.tensor4d(Array.from({ length: 75 }, (_, i) => (i % 7) / 7), [1, 5, 5, 3]);
      const normalized = (loaded.getLayer('normalization').apply(probe) as tf.Tensor).dataSync();
      const values = probe.dataSync();
      values.forEach((v, i) => assert.ok(Math.abs(normalized[i] - (v - mean[i % 3]) / Math.sqrt(variance[i % 3])) < 1e-5, `element ${i}`));
    });

    it('reads weights from several shards in manifest order', async () => {
      const model = buildFunctionalModel();
      const { modelJsonPath, weightsPath } = await saveLayersModelToDir(model, path.join(scratchDir('shards'), 'out'));
      const bytes = fs.readFileSync(weightsPath);
      const cut = 1000; // not on a weight boundary: tfjs splits shards at arbitrary bytes
      fs.writeFileSync(path.join(path.dirname(weightsPath), 'part1.bin'), bytes.subarray(0, cut));
      fs.mkdirSync(path.join(path.dirname(weightsPath), 'sub'));
      fs.writeFileSync(path.join(path.dirname(weightsPath), 'sub', 'part2.bin'), bytes.subarray(cut));
      fs.rmSync(weightsPath);
      editModelJson(modelJsonPath, (json) => (json.weightsManifest[0].paths = ['part1.bin', 'sub/../sub/part2.bin']));
      const artifacts = await readModelArtifacts(modelJsonPath);
      assert.deepStrictEqual(Buffer.from(artifacts.weightData as ArrayBuffer), bytes);
      assertSamePredictions(model, await loadLayersModelFromFile(modelJsonPath));
    });

    it('loads a Keras-converter functional model.json with every weight in its variable', async () => {
      const { modelJsonPath, valuesByWeight } = materializeFixture('keras-converter-functional');
      const model = await loadLayersModelFromFile(modelJsonPath);
      assert.deepStrictEqual(model.inputs[0].shape, [null, 4, 4, 1]);
      assert.deepStrictEqual(model.outputs[0].shape, [null, 3]);
      const loadedNames = model.weights.map((weight) => weight.originalName).sort();
      assert.deepStrictEqual(loadedNames, [...valuesByWeight.keys()].sort());
      for (const weight of model.weights) {
        assert.deepStrictEqual(Array.from(weight.read().dataSync()), valuesByWeight.get(weight.originalName), weight.originalName);
      }
      const output = predictValues(model, tf.ones([1, 4, 4, 1]));
      assert.strictEqual(output.length, 3);
      assert.ok(Math.abs(output.reduce((sum, value) => sum + value, 0) - 1) < 1e-5, 'softmax output sums to 1');
    });

    it('loads a Keras-converter Sequential with batch_input_shape on its first layer', async () => {
      const { modelJsonPath, valuesByWeight } = materializeFixture('keras-converter-sequential');
      const model = await loadLayersModelFromFile(modelJsonPath);
      assert.deepStrictEqual(model.inputs[0].shape, [null, 5, 5, 1]);
      for (const weight of model.weights) {
        assert.deepStrictEqual(Array.from(weight.read().dataSync()), valuesByWeight.get(weight.originalName), weight.originalName);
      }
    });

    it('dequantizes uint8 and float16 weights', async () => {
      const dir = scratchDir('quantized');
      const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, name: 'fc' })] });
      const topology = model.toJSON(undefined, false);
      const kernelCodes = [0, 1, 2, 255];
      // float16 bit patterns of 1, -2, 0.5 would need 3 values; the bias has 2: 1.0 and -2.0.
      const biasHalfs = [0x3c00, 0xc000];
      const shard = Buffer.alloc(4 + 4);
      kernelCodes.forEach((code, i) => shard.writeUInt8(code, i));
      biasHalfs.forEach((bits, i) => shard.writeUInt16LE(bits, 4 + 2 * i));
      fs.writeFileSync(path.join(dir, 'q.bin'), shard);
      writeJson(path.join(dir, 'model.json'), {
        format: 'layers-model',
        modelTopology: topology,
        weightsManifest: [
          {
            paths: ['q.bin'],
            weights: [
              { name: 'fc/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
              { name: 'fc/bias', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
            ],
          },
        ],
      });
      const artifacts = await readModelArtifacts(path.join(dir, 'model.json'));
      assert.ok(artifacts.weightSpecs!.every((spec) => spec.quantization === undefined));
      const loaded = await loadLayersModelFromFile(path.join(dir, 'model.json'));
      const [kernel, bias] = loaded.getWeights().map((weight) => Array.from(weight.dataSync()));
      assert.deepStrictEqual(kernel, kernelCodes.map((code) => code * 0.5 - 1));
      assert.deepStrictEqual(bias, [1, -2]);
    });

    it('readModelTopology returns the parsed JSON without reading any shard', async () => {
      const modelJsonPath = await savedFunctionalModel();
      fs.rmSync(path.join(path.dirname(modelJsonPath), 'weights.bin'));
      const json = await readModelTopology(modelJsonPath);
      assert.deepStrictEqual(json, readJson(modelJsonPath));
    });
  });

  describe('refused model.json files', () => {
    it('an unreadable (missing) file', async () => {
      const file = path.join(scratchDir('missing'), 'model.json');
      assertMessage(await expectInputError(() => loadLayersModelFromFile(file)), file, /cannot read the model file/, /ENOENT/);
    });

    it('truncated JSON, with the position', async () => {
      const modelJsonPath = await savedFunctionalModel();
      const text = fs.readFileSync(modelJsonPath, 'utf8');
      fs.writeFileSync(modelJsonPath, text.slice(0, 200));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /truncated/, /line 1 column 201/);
    });

    it('invalid JSON, with the line and column', async () => {
      const file = path.join(scratchDir('invalid'), 'model.json');
      fs.writeFileSync(file, '{\n  "format": "layers-model",\n  "modelTopology" {}\n}');
      assertMessage(await expectInputError(() => readModelTopology(file)), file, /^invalid JSON at line 3 column 19 \(byte 48\): Unexpected token '\{'$/);
      fs.writeFileSync(file, '{"format": "layers-model",\n "modelTopology": {"a" 1}}');
      assertMessage(await expectInputError(() => readModelTopology(file)), file, /^invalid JSON at line 2 column 24 \(byte 50\): Expected ':' after property name$/);
    });

    it('JSON that is not a Layers model', async () => {
      const file = path.join(scratchDir('not-layers'), 'model.json');
      writeJson(file, { name: 'package', version: '1.0.0' });
      assertMessage(await expectInputError(() => loadLayersModelFromFile(file)), file, /not a TF\.js Layers model: it has no modelTopology/);
    });

    it('a graph model', async () => {
      const file = path.join(scratchDir('graph'), 'model.json');
      writeJson(file, { format: 'graph-model', modelTopology: { node: [], versions: {} }, weightsManifest: [] });
      assertMessage(await expectInputError(() => loadLayersModelFromFile(file)), file, /^is a TF\.js graph model; PaS needs a Layers model/);
    });

    it('a topology that is not Sequential/Model/Functional', async () => {
      const file = path.join(scratchDir('topology'), 'model.json');
      writeJson(file, { format: 'layers-model', modelTopology: { class_name: 'Conv2D', config: {} }, weightsManifest: [] });
      assertMessage(await expectInputError(() => readModelTopology(file)), file, /class "Conv2D"; a Layers model is a Sequential, Model or Functional/);
    });

    it('Keras 3 inbound nodes', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => {
        layerNamed(json, 'conv1').inbound_nodes = [
          { args: [{ class_name: '__keras_tensor__', config: { shape: [null, 8, 8, 3], dtype: 'float32', keras_history: ['image', 0, 0] } }], kwargs: {} },
        ];
      });
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /layer 'conv1' uses the Keras 3 format/);
    });

    it('a layer class TF.js cannot deserialize, before any weight is read', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => (layerNamed(json, 'relu1').class_name = 'PasTestOnlyLayer'));
      const spy = spyOnFileOpens();
      let error: PasInputError;
      try {
        error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      } finally {
        spy.restore();
      }
      assertMessage(error, modelJsonPath, /^layer 'relu1' has class 'PasTestOnlyLayer', which TF\.js cannot load/);
      assert.ok(!spy.opened.some((file) => file.endsWith('weights.bin')), `opened ${spy.opened}`);
    });

    it('a layer class TF.js loads but PaS has no rule for (Masking) loads: PaS never refuses what TF.js can load', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => {
        const layer = layerNamed(json, 'relu1');
        layer.class_name = 'Masking';
        layer.config = { name: 'relu1', trainable: true, mask_value: 0 };
      });
      const model = await loadLayersModelFromFile(modelJsonPath);
      assert.strictEqual(model.getLayer('relu1').getClassName(), 'Masking');
      model.dispose();
    });

    it('an inbound node naming a layer that does not exist', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => (layerNamed(json, 'bn2').inbound_nodes[0][0][0] = 'conv9'));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /layer 'bn2' takes input from layer 'conv9', which does not exist in the model/);
    });

    it('a cycle in the layer graph', async () => {
      const modelJsonPath = await savedFunctionalModel();
      // conv2 now reads the output of add, which (through bn2) reads conv2.
      editModelJson(modelJsonPath, (json) => (layerNamed(json, 'conv2').inbound_nodes[0][0][0] = 'add'));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /the layer graph has a cycle through layers/, /'conv2'/, /'bn2'/, /'add'/);
      assert.doesNotMatch(error.reason, /'conv1'/);
    });

    it('a manifest shape that differs from the layer config, naming the layer and both shapes', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => (layerNamed(json, 'fc').config.units = 5));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /^layer 'fc' weight fc\/kernel has shape \[16, 5\] from the layer config but \[16, 3\] in the weights manifest$/);
    });

    it('a manifest weight no layer has (weight count mismatch)', async () => {
      const modelJsonPath = await savedFunctionalModel();
      editModelJson(modelJsonPath, (json) => (layerNamed(json, 'conv1').config.use_bias = false));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /^layer 'conv1' has 1 weight from its config \(conv1\/kernel\), but the weights manifest also lists weight conv1\/bias of shape \[4\]$/);
    });

    it('a layer weight missing from the manifest', async () => {
      const modelJsonPath = await savedFunctionalModel();
      const weightsPath = path.join(path.dirname(modelJsonPath), 'weights.bin');
      // Drop fc/bias (3 floats) from the manifest and its bytes from the shard.
      const offset = weightOffset(modelJsonPath, 'fc/bias');
      editModelJson(modelJsonPath, (json) => {
        json.weightsManifest[0].weights = json.weightsManifest[0].weights.filter((spec: any) => spec.name !== 'fc/bias');
      });
      const bytes = fs.readFileSync(weightsPath);
      fs.writeFileSync(weightsPath, Buffer.concat([bytes.subarray(0, offset), bytes.subarray(offset + 3 * 4)]));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /^layer 'fc' needs weight fc\/bias of shape \[3\], which the weights manifest does not list$/);
    });

    it('weight shapes with negative or non-integer sizes, unsupported dtypes, and huge totals', async () => {
      const cases: [unknown, RegExp][] = [
        [{ name: 'conv1/kernel', shape: [3, -3, 3, 4], dtype: 'float32' }, /weight conv1\/kernel has shape \[3,-3,3,4\]: size -3 is not a non-negative integer/],
        [{ name: 'conv1/kernel', shape: [3, 1.5], dtype: 'float32' }, /size 1\.5 is not a non-negative integer/],
        [{ name: 'conv1/kernel', shape: [3, 3, 3, 4], dtype: 'string' }, /weight conv1\/kernel has dtype "string"/],
        [{ name: 'conv1/kernel', shape: [100000, 100000], dtype: 'float32' }, /over 2 GiB/],
      ];
      for (const [spec, pattern] of cases) {
        const modelJsonPath = await savedFunctionalModel();
        editModelJson(modelJsonPath, (json) => (json.weightsManifest[0].weights[0] = spec));
        assertMessage(await expectInputError(() => readModelArtifacts(modelJsonPath)), modelJsonPath, pattern);
      }
    });
  });

  describe('refused weight shards', () => {
    it('a missing shard', async () => {
      const modelJsonPath = await savedFunctionalModel();
      fs.rmSync(path.join(path.dirname(modelJsonPath), 'weights.bin'));
      const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      assertMessage(error, modelJsonPath, /weights shard "weights\.bin" listed in the manifest is missing/);
    });

    it('a short shard and a long shard', async () => {
      for (const [change, pattern] of [
        [(bytes: Buffer) => bytes.subarray(0, bytes.length - 8), /8 bytes short: the shard is truncated/],
        [(bytes: Buffer) => Buffer.concat([bytes, Buffer.alloc(4)]), /4 bytes too long/],
      ] as const) {
        const modelJsonPath = await savedFunctionalModel();
        const weightsPath = path.join(path.dirname(modelJsonPath), 'weights.bin');
        fs.writeFileSync(weightsPath, change(fs.readFileSync(weightsPath)));
        const error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
        assertMessage(error, weightsPath, /model\.json lists weights \(conv1\/kernel, /, pattern);
      }
    });

    it('NaN and infinite weights, with their counts', async () => {
      for (const [bad, count, pattern] of [
        [NaN, 3, /^weight conv2\/kernel has 3 NaN values$/],
        [-Infinity, 2, /^weight conv2\/kernel has 2 infinite values$/],
      ] as const) {
        const modelJsonPath = await savedFunctionalModel();
        const weightsPath = path.join(path.dirname(modelJsonPath), 'weights.bin');
        const bytes = fs.readFileSync(weightsPath);
        const offset = weightOffset(modelJsonPath, 'conv2/kernel');
        for (let i = 0; i < count; i++) bytes.writeFloatLE(bad, offset + 8 * i);
        fs.writeFileSync(weightsPath, bytes);
        assertMessage(await expectInputError(() => loadLayersModelFromFile(modelJsonPath)), modelJsonPath, pattern);
      }
    });

    /**
     * Puts a valid copy of the weights outside the model folder, points the manifest at it via
     * `pointAt`, and checks the load is refused without the outside file ever being opened.
     */
    async function expectEscapeRefused(pointAt: (modelDir: string, outsidePath: string) => string, pattern: RegExp): Promise<void> {
      const modelJsonPath = await savedFunctionalModel();
      const modelDir = path.dirname(modelJsonPath);
      const outsidePath = path.join(path.dirname(modelDir), 'outside.bin');
      fs.renameSync(path.join(modelDir, 'weights.bin'), outsidePath);
      const manifestPath = pointAt(modelDir, outsidePath);
      editModelJson(modelJsonPath, (json) => (json.weightsManifest[0].paths = [manifestPath]));
      const spy = spyOnFileOpens();
      let error: PasInputError;
      try {
        error = await expectInputError(() => loadLayersModelFromFile(modelJsonPath));
      } finally {
        spy.restore();
      }
      assertMessage(error, modelJsonPath, pattern);
      assert.ok(spy.opened.includes(modelJsonPath), 'the spy saw model.json being read');
      assert.ok(!spy.opened.some((file) => file.includes('outside.bin')), `opened ${spy.opened}`);
      // The same manifest entry pointing inside the folder loads, so the refusal was about the path.
      fs.renameSync(outsidePath, path.join(modelDir, 'weights.bin'));
      editModelJson(modelJsonPath, (json) => (json.weightsManifest[0].paths = ['weights.bin']));
      await loadLayersModelFromFile(modelJsonPath);
    }

    it('a ../ path escaping the folder, without opening it', async () => {
      await expectEscapeRefused(() => '../outside.bin', /weights shard path "\.\.\/outside\.bin" escapes the model folder/);
      await expectEscapeRefused(() => 'sub/../../outside.bin', /escapes the model folder/);
      await expectEscapeRefused(() => '..\\outside.bin', /escapes the model folder/);
    });

    it('an absolute path, without opening it', async () => {
      await expectEscapeRefused((_, outsidePath) => outsidePath, /is absolute; shard paths must be relative/);
      await expectEscapeRefused((_, outsidePath) => `file://${outsidePath}`, /is absolute/);
    });

    it('a symlink out of the folder, without opening its target', async () => {
      await expectEscapeRefused((modelDir, outsidePath) => {
        fs.symlinkSync(outsidePath, path.join(modelDir, 'link.bin'));
        return 'link.bin';
      }, /weights shard "link\.bin" resolves \(through a symbolic link\) to .*outside\.bin, outside the model folder/);
    });

    it('accepts a symlink that stays inside the folder', async () => {
      const modelJsonPath = await savedFunctionalModel();
      const modelDir = path.dirname(modelJsonPath);
      fs.mkdirSync(path.join(modelDir, 'store'));
      fs.renameSync(path.join(modelDir, 'weights.bin'), path.join(modelDir, 'store', 'w.bin'));
      fs.symlinkSync(path.join(modelDir, 'store', 'w.bin'), path.join(modelDir, 'weights.bin'));
      await loadLayersModelFromFile(modelJsonPath);
    });
  });

  describe('atomic saving', () => {
    it('leaves no temp folder behind on success', async () => {
      const parent = scratchDir('atomic');
      await saveLayersModelToDir(buildSequentialModel(), path.join(parent, 'out'));
      assert.deepStrictEqual(fs.readdirSync(parent), ['out']);
    });

    it('refuses a non-empty existing folder and leaves it untouched', async () => {
      const parent = scratchDir('existing');
      const dir = path.join(parent, 'out');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
      const error = await expectInputError(() => saveLayersModelToDir(buildSequentialModel(), dir));
      assertMessage(error, dir, /output folder already exists and is not empty; pass another --out/);
      assert.deepStrictEqual(fs.readdirSync(dir), ['notes.txt']);
      assert.deepStrictEqual(leftovers(parent), []);
    });

    it('fills an existing empty folder', async () => {
      const dir = scratchDir('empty');
      const model = buildSequentialModel();
      const { modelJsonPath } = await saveLayersModelToDir(model, dir);
      assertSamePredictions(model, await loadLayersModelFromFile(modelJsonPath));
      assert.deepStrictEqual(leftovers(path.dirname(dir)), []);
    });

    it('replaces a non-empty folder with overwrite, leaving only the new model', async () => {
      const parent = scratchDir('overwrite');
      const dir = path.join(parent, 'out');
      await saveLayersModelToDir(buildFunctionalModel(), dir);
      fs.writeFileSync(path.join(dir, 'stale.txt'), 'old');
      const model = buildSequentialModel();
      await saveLayersModelToDir(model, dir, { overwrite: true });
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
      assert.deepStrictEqual(fs.readdirSync(parent), ['out']);
      assertSamePredictions(model, await loadLayersModelFromFile(path.join(dir, 'model.json')));
    });

    it('fails cleanly when the parent is a regular file or does not exist', async () => {
      const parent = scratchDir('bad-parent');
      const file = path.join(parent, 'a-file');
      fs.writeFileSync(file, 'x');
      const underFile = path.join(file, 'out');
      assertMessage(await expectInputError(() => saveLayersModelToDir(buildSequentialModel(), underFile)), underFile, /ENOTDIR/);
      const underMissing = path.join(parent, 'missing', 'out');
      assertMessage(
        await expectInputError(() => saveLayersModelToDir(buildSequentialModel(), underMissing)),
        underMissing,
        /cannot create the output folder: its parent folder .*missing does not exist/,
      );
      assert.deepStrictEqual(fs.readdirSync(parent), ['a-file']);
    });

    it('on a failed write (ENOSPC) leaves nothing behind and keeps the old folder', async () => {
      const parent = scratchDir('enospc');
      const dir = path.join(parent, 'out');
      const old = await saveLayersModelToDir(buildFunctionalModel(), dir);
      const oldJson = fs.readFileSync(old.modelJsonPath, 'utf8');
      const originalOpen = fs.promises.open;
      let failedWrites = 0;
      // Fails the second file of the save, after weights.bin has been written into the temp folder.
      fs.promises.open = (async (file: fs.PathLike, ...rest: any[]) => {
        if (String(file).includes('.tmp-') && String(file).endsWith('model.json')) {
          failedWrites++;
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        }
        return (originalOpen as any)(file, ...rest);
      }) as typeof fs.promises.open;
      let error: PasInputError;
      try {
        error = await expectInputError(() => saveLayersModelToDir(buildSequentialModel(), dir, { overwrite: true }));
      } finally {
        fs.promises.open = originalOpen;
      }
      assert.strictEqual(failedWrites, 1);
      assertMessage(error, dir, /cannot write the output folder: no space left on the device \(ENOSPC\)/);
      assert.deepStrictEqual(fs.readdirSync(parent), ['out']);
      assert.strictEqual(fs.readFileSync(old.modelJsonPath, 'utf8'), oldJson);
    });
  });

  describe('writeFileAtomic', () => {
    it('writes and replaces a file, leaving no temp file', async () => {
      const dir = scratchDir('write-atomic');
      const file = path.join(dir, 'report.json');
      await writeFileAtomic(file, '{"v":1}');
      await writeFileAtomic(file, new Uint8Array([0x7b, 0x7d]));
      assert.strictEqual(fs.readFileSync(file, 'utf8'), '{}');
      assert.deepStrictEqual(fs.readdirSync(dir), ['report.json']);
    });

    it('fails with a PasInputError and no temp file when it cannot write', async () => {
      const dir = scratchDir('write-atomic-fail');
      const failing = path.join(dir, 'a-file', 'report.json');
      fs.writeFileSync(path.join(dir, 'a-file'), 'x');
      assertMessage(await expectInputError(() => writeFileAtomic(failing, 'data')), failing, /cannot write the file: .*ENOTDIR/);

      const target = path.join(dir, 'report.json');
      fs.writeFileSync(target, 'old');
      const originalOpen = fs.promises.open;
      fs.promises.open = (async () => {
        throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      }) as typeof fs.promises.open;
      let error: PasInputError;
      try {
        error = await expectInputError(() => writeFileAtomic(target, 'new'));
      } finally {
        fs.promises.open = originalOpen;
      }
      assertMessage(error, target, /permission denied \(EACCES\)/);
      assert.strictEqual(fs.readFileSync(target, 'utf8'), 'old');
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['a-file', 'report.json']);
    });
  });
});
