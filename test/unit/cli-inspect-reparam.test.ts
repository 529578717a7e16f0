import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import type { InspectEvent, ReparamEvent } from '../../src/shared/workerProtocol';
import { saveLayersModelToDir } from '../../src/engine/io';
import { fingerprintFolder, makeTempDir, parseEvents, runCli } from '../support/cli';

describe('pas inspect and pas reparam (CLI)', function () {
  this.timeout(300_000);
  let work: string;
  before(() => {
    work = makeTempDir('pas-cli-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('inspect --json reports both forms of RepVGG-A0 at 224x224 with the paper\'s sizes', () => {
    const result = runCli(['inspect', 'builtin:repvgg-a0', '--input', '224,224,3', '--classes', '1000', '--json', '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    const events = parseEvents(result.stdout);
    assert.deepEqual(events.map((e) => e.type), ['start', 'inspect', 'done']);
    const { report } = events[1] as InspectEvent;
    assert.equal(report.prunableGroups.length, 22);
    assert.ok(Math.abs(report.deployedForm.totalParams / 8.30e6 - 1) < 0.01);
    assert.equal(Math.round(report.deployedForm.totalMacs / 1e8) / 10, 1.4);
    // The training-time form has the extra 1x1 branches and BNs, so more of both.
    assert.ok(report.trainingForm.totalMacs > report.deployedForm.totalMacs);
    assert.ok(report.deployedForm.layers.every((l) => l.type === 'Conv2D' || l.type === 'Dense'));
    const rowSum = report.deployedForm.layers.reduce((s, l) => s + l.macs, 0);
    assert.equal(rowSum, report.deployedForm.totalMacs);
  });

  it('inspect prints a readable table with totals', () => {
    const result = runCli(['inspect', 'builtin:residual-cnn', '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /training-time form: .* MACs/);
    assert.match(result.stdout, /deployed form \(reparameterized\)/);
    assert.match(result.stdout, /prunable channel groups \(one DBC mask each\): 5/);
  });

  it('reparam --check writes an equivalent deployed model next to the model folder and leaves the input alone', () => {
    const modelDir = path.join(work, 'residual');
    const made = runCli(['reparam', 'builtin:residual-cnn', '--out', modelDir, '--backend', 'cpu']);
    assert.equal(made.status, 0, made.stderr);
    const before = fingerprintFolder(modelDir);
    const result = runCli(['reparam', path.join(modelDir, 'model.json'), '--check', '--json', '--backend', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    const event = parseEvents(result.stdout).find((e) => e.type === 'reparam') as ReparamEvent;
    assert.ok(event.maxAbsDiff <= 1e-4);
    assert.equal(path.dirname(path.dirname(event.output)), work, 'a sibling of the model folder');
    assert.ok(fs.existsSync(event.output));
    assert.deepEqual(fingerprintFolder(modelDir), before);
    // Running it again picks a new folder instead of overwriting the first output.
    const again = runCli(['reparam', path.join(modelDir, 'model.json'), '--json', '--backend', 'cpu']);
    const second = parseEvents(again.stdout).find((e) => e.type === 'reparam') as ReparamEvent;
    assert.notEqual(second.output, event.output);
  });

  it('reparam --check exits 3 and writes nothing when the deployed model is not equivalent', async () => {
    // BN with variance 0 and a huge gamma: folding it scales the kernel by ~3e7, and float32
    // rounding then exceeds the 1e-4 tolerance, as it would for a degenerate real model.
    await tf.setBackend('cpu');
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv' }).apply(input) as tf.SymbolicTensor;
    const bnLayer = tf.layers.batchNormalization({ name: 'bn', epsilon: 1e-12 });
    const bn = bnLayer.apply(conv) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(bn) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3 }).apply(pooled) as tf.SymbolicTensor });
    bnLayer.setWeights([tf.fill([4], 1e6), tf.zeros([4]), tf.fill([4], 0.123456), tf.fill([4], 1e-9)]);
    const dir = path.join(work, 'degenerate');
    await saveLayersModelToDir(model, dir);
    const out = path.join(work, 'degenerate-out');
    const result = runCli(['reparam', path.join(dir, 'model.json'), '--check', '--out', out, '--backend', 'cpu']);
    assert.equal(result.status, 3, result.stderr);
    assert.match(result.stderr, /differs by .* \(> 0\.0001\); nothing written/);
    assert.ok(!fs.existsSync(out));
  });

  it('inspect shows a layer PaS has no rule for and the groups it holds fixed; search refuses only when nothing is left to prune', async () => {
    await tf.setBackend('cpu');
    const build = (withPrunable: boolean) => {
      // The sample data's shape and classes (28x28x1, 10), so a search gets past the data checks.
      const input = tf.input({ shape: [28, 28, 1] });
      let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv_a' }).apply(input) as tf.SymbolicTensor;
      x = tf.layers.layerNormalization({ name: 'norm' }).apply(x) as tf.SymbolicTensor;
      if (withPrunable) {
        x = tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv_b' }).apply(x) as tf.SymbolicTensor;
        x = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv_c' }).apply(x) as tf.SymbolicTensor;
      }
      const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 10, name: 'classifier' }).apply(pooled) as tf.SymbolicTensor });
    };
    const withUnknown = path.join(work, 'unknown-layer');
    await saveLayersModelToDir(build(true), withUnknown);
    const json = runCli(['inspect', withUnknown, '--json', '--backend', 'cpu']);
    assert.equal(json.status, 0, json.stderr);
    const { report } = parseEvents(json.stdout).find((e) => e.type === 'inspect') as InspectEvent;
    assert.deepEqual(report.unknownLayers, [{ name: 'norm', type: 'LayerNormalization', outputShape: [28, 28, 4] }]);
    assert.deepEqual(report.prunableGroups.map((g) => g.name), ['conv_b', 'conv_c']);
    assert.match(report.fixedGroups!.find((g) => g.name === 'conv_a')!.reason, /feeds an unknown layer LayerNormalization \('norm'\)/);
    const text = runCli(['inspect', withUnknown, '--backend', 'cpu']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /fixed channel groups \(held at full width\): 2/);
    assert.match(text.stdout, /layers PaS has no rule for .*: 1\n.*\nnorm +LayerNormalization +28x28x4/);

    const nothing = path.join(work, 'nothing-prunable');
    await saveLayersModelToDir(build(false), nothing);
    const out = path.join(work, 'nothing-out');
    const search = runCli(['search', nothing, '--data', 'sample', '--target-macs', '0.5', '--out', out, '--backend', 'cpu']);
    assert.equal(search.status, 2, search.stderr);
    const lines = search.stderr.trim().split('\n').filter((l) => l.startsWith('pas:'));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /nothing left to prune: every channel group is held at full width \('conv_a' feeds an unknown layer LayerNormalization/);
    assert.ok(!fs.existsSync(out), 'nothing written');
  });

  it('a missing model file exits 2 with one line naming it', () => {
    const missing = path.join(work, 'nope', 'model.json');
    const result = runCli(['inspect', missing, '--backend', 'cpu']);
    assert.equal(result.status, 2);
    const lines = result.stderr.trim().split('\n').filter((l) => l.startsWith('pas:'));
    assert.equal(lines.length, 1);
    assert.ok(lines[0].includes(missing), lines[0]);
  });
});
