import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { measureLatency, percentChange } from '../../src/engine/latency';
import type { DoneEvent, InspectEvent } from '../../src/shared/workerProtocol';
import { makeTempDir, parseEvents, runCli } from '../support/cli';

/** A heavy conv (64->64, 3x3 at 32x32: 37.7M MACs) next to a ReLU (65K comparisons). */
function heavyAndLight(): tf.LayersModel {
  const input = tf.input({ shape: [32, 32, 64] });
  const conv = tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', name: 'heavy_conv' }).apply(input) as tf.SymbolicTensor;
  const relu = tf.layers.reLU({ name: 'light_relu' }).apply(conv) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: relu });
}

describe('measured latency', function () {
  this.timeout(300_000);
  before(async () => {
    await initBackend('wasm');
  });

  it('times every layer once per run, in model order, and finds the time where the MACs are', () => {
    const model = heavyAndLight();
    const report = measureLatency(model, { runs: 5, warmup: 1 });
    assert.deepEqual(report.perLayer.map((l) => l.name), ['heavy_conv', 'light_relu']);
    assert.equal(report.backend, 'wasm');
    assert.ok(report.medianMs > 0);
    const [conv, relu] = report.perLayer;
    // 500x the work: a margin no busy machine erases.
    assert.ok(conv.medianMs > relu.medianMs, `conv ${conv.medianMs} ms vs relu ${relu.medianMs} ms`);
    model.dispose();
  });

  it('leaves no tensors behind and rejects a bad batch size', () => {
    const model = heavyAndLight();
    const before = tf.memory().numTensors;
    measureLatency(model, { runs: 2, warmup: 0, batch: 2 });
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => measureLatency(model, { batch: 0 }), /batch/);
    model.dispose();
  });

  it('on wasm the per-layer runs read nothing back (a read-back copies each output into a new JS array, whose garbage collections land on the large layers)', () => {
    const model = heavyAndLight();
    const original = tf.Tensor.prototype.dataSync;
    let reads = 0;
    tf.Tensor.prototype.dataSync = function (this: tf.Tensor) {
      reads++;
      return original.call(this);
    } as typeof original;
    try {
      const report = measureLatency(model, { runs: 4, warmup: 2 });
      assert.equal(report.perLayer.length, 2);
    } finally {
      tf.Tensor.prototype.dataSync = original;
      model.dispose();
    }
    // One read-back per whole pass (warm-up and timed), none per layer.
    assert.equal(reads, 2 + 4);
  });

  it('formats changes as signed percentages', () => {
    assert.equal(percentChange(100, 50), '-50%');
    assert.equal(percentChange(2, 3), '+50%');
  });

  it('pas inspect --latency adds a latency for every deployed layer (JSON and the text column)', () => {
    const json = runCli(['inspect', 'builtin:default', '--latency', '--json', '--backend', 'wasm']);
    assert.equal(json.status, 0, json.stderr);
    const report = (parseEvents(json.stdout).find((e) => e.type === 'inspect') as InspectEvent).report;
    assert.ok(report.latency, 'no latency in the inspect report');
    assert.equal(report.latency.batch, 1);
    const timed = new Set(report.latency.perLayer.map((l) => l.name));
    for (const row of report.deployedForm.layers) assert.ok(timed.has(row.name), `deployed layer ${row.name} has no latency`);
    const text = runCli(['inspect', 'builtin:default', '--latency', '--batch', '2', '--backend', 'wasm']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /% MACs\s+ms\s+% time/);
    assert.match(text.stdout, /latency \(wasm, batch 2, median of \d+ runs/);
  });

  it("a search's report has the latency of the unpruned and the pruned deployed model, per layer too", () => {
    const work = makeTempDir('pas-latency-');
    try {
      const out = path.join(work, 'run');
      const result = runCli(['search', 'builtin:default', '--method', 'uniform', '--target-macs', '0.5', '--pretrain-epochs', '0', '--search-epochs', '0', '--finetune-epochs', '0', '--data', 'sample', '--max-train', '64', '--max-test', '32', '--batch-size', '32', '--backend', 'wasm', '--out', out, '--json']);
      assert.equal(result.status, 0, result.stderr.slice(-2000));
      const report = (parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent).report!;
      assert.ok(report.latencyBefore! > 0 && report.latencyAfter! > 0, `${report.latencyBefore} ${report.latencyAfter}`);
      const onDisk = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
      assert.equal(onDisk.latencyBefore, report.latencyBefore);
      const names = report.latencyLayers!.map((l) => l.name);
      assert.ok(names.includes('classifier'));
      // Pruning removes channels, never layers: every layer is timed before and after.
      assert.ok(report.latencyLayers!.every((l) => l.afterMs !== undefined && l.beforeMs > 0));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
