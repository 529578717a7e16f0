import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { InspectEvent, ReparamEvent } from '../../src/shared/workerProtocol';
import { hasLayerRule } from '../../src/engine/graph/layerRules';
import { loadModelSource } from '../../src/engine/model';
import { makeTempDir, parseEvents, runCli } from '../support/cli';
import { FixtureName, fixturePath, fixtureReference, nchwToNhwc, relativeError, runOnnx } from '../support/onnx';
import { searchAndCheck } from '../support/onnxSearch';
import { predictModel } from '../support/tensors';

const TOLERANCE = 1e-4;
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('pas with .onnx models (CLI)', function () {
  this.timeout(600_000);
  let work: string;
  before(() => {
    work = makeTempDir('pas-onnx-cli-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("inspect reports PyTorch's MACs for an ONNX MobileNetV2", () => {
    const result = runCli(['inspect', fixturePath('mobilenetv2'), '--json', '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    const { report } = parseEvents(result.stdout).find((e) => e.type === 'inspect') as InspectEvent;
    assert.equal(report.trainingForm.totalMacs, fixtureReference('mobilenetv2').macsPerImage);
    assert.deepEqual(report.inputShape, [32, 32, 3]);
    assert.equal(report.numClasses, 10);
  });

  it('reparam --check --format onnx writes only model.onnx, which matches PyTorch, and leaves the input alone', async () => {
    const before = sha256(fixturePath('resnet18-slim'));
    const out = path.join(work, 'reparam-onnx');
    const result = runCli(['reparam', fixturePath('resnet18-slim'), '--check', '--format', 'onnx', '--out', out, '--json', '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    const event = parseEvents(result.stdout).find((e) => e.type === 'reparam') as ReparamEvent;
    assert.equal(event.output, path.join(out, 'model.onnx'));
    assert.deepEqual(fs.readdirSync(out), ['model.onnx']);
    const ref = fixtureReference('resnet18-slim');
    const onnx = await runOnnx(event.output, Float32Array.from(ref.input), ref.inputShape);
    assert.deepEqual(onnx.inputNames, ['input']);
    assert.deepEqual(onnx.outputNames, ['logits']);
    const error = relativeError(onnx.output, ref.output);
    assert.ok(error <= TOLERANCE, `relative error vs PyTorch ${error}`);
    assert.equal(sha256(fixturePath('resnet18-slim')), before);
  });

  it('reparam --format both writes model.json and model.onnx that compute the same', async () => {
    const out = path.join(work, 'reparam-both');
    const result = runCli(['reparam', fixturePath('mobilenetv2'), '--format', 'both', '--out', out, '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(fs.readdirSync(out).sort(), ['model.json', 'model.onnx', 'weights.bin']);
    const ref = fixtureReference('mobilenetv2');
    const { model } = await loadModelSource(path.join(out, 'model.json'));
    const [n, c, h, w] = ref.inputShape;
    const input = tf.tensor(nchwToNhwc(ref.input, ref.inputShape), [n, h, w, c]);
    const tfjs = predictModel(model, input);
    input.dispose();
    model.dispose();
    const onnx = await runOnnx(path.join(out, 'model.onnx'), Float32Array.from(ref.input), ref.inputShape);
    assert.ok(relativeError(onnx.output, tfjs) <= TOLERANCE);
    assert.ok(relativeError(tfjs, ref.output) <= TOLERANCE);
  });

  it('search --format onnx on the ResNet-18 fixture writes a deployed ONNX on the MACs target', () => searchAndCheck(work, 'resnet18-slim'));

  // Squeeze-excitation (Multiply, Reshape) and Concatenate are covered by the layer-rules registry
  // (src/engine/graph/layerRules); test/slow/onnx-search.test.ts searches these models.
  for (const [name, needs] of [['efficientnet-b0', ['Multiply', 'Reshape']], ['densenet-tiny', ['Concatenate']]] as [FixtureName, string[]][]) {
    it(`loads ${name}, whose ${needs.join('/')} layers have pruning rules`, async () => {
      assert.deepEqual(needs.filter((c) => !hasLayerRule(c)), []);
      const { model } = await loadModelSource(fixturePath(name));
      const classes = new Set(model.layers.map((l) => l.getClassName()));
      model.dispose();
      for (const c of needs) assert.ok(classes.has(c), `the import writes ${c} layers`);
    });
  }
});
